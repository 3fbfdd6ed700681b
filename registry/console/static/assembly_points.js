// The assembly points page: the listed points (or the one being edited) on the map, read from the page's
// own table rows and data attributes; clicking the map fills the form's latitude and longitude. Follows an
// import job by polling, then loads the page again with its result.
"use strict";

(function () {
  const ROUND = 100000; // five decimals: about a metre

  function pointsOn(element) {
    const sources = element.dataset.lat ? [element] : [...document.querySelectorAll("tr[data-lat]")];
    return sources.map((source) => ({
      name: source.dataset.name, lat: Number(source.dataset.lat), lon: Number(source.dataset.lon),
      capacity: source.dataset.capacity, active: source.dataset.active === "true", edit: source.dataset.edit,
    }));
  }

  function popup(point) {
    const box = document.createElement("div");
    const title = document.createElement("strong");
    title.textContent = point.name;
    box.append(title, document.createElement("br"),
      document.createTextNode(`capacity ${point.capacity}${point.active ? "" : " · inactive"}`));
    if (point.edit) {
      const link = document.createElement("a");
      link.href = point.edit;
      link.textContent = "Edit";
      box.append(document.createElement("br"), link);
    }
    return box;
  }

  function showMap(element) {
    const points = pointsOn(element);
    const options = points.length === 1 ? { center: [points[0].lat, points[0].lon], zoom: 10 }
      : points.length > 1 ? { bounds: points.map((p) => [p.lat, p.lon]), maxZoom: 10 } : {};
    const map = Sagip.map(element, options);
    for (const point of points) {
      L.circleMarker([point.lat, point.lon], {
        radius: 8, weight: 2, color: "#ffffff", fillColor: point.active ? "#0b5cad" : "#767f89", fillOpacity: 0.9,
        className: "point-marker",
      }).bindTooltip(point.name).bindPopup(popup(point)).addTo(map);
    }
    const lat = document.getElementById("lat");
    const lon = document.getElementById("lon");
    if (element.hasAttribute("data-pick") && lat && lon) {
      let picked = null;
      map.on("click", (event) => {
        const at = event.latlng.wrap();
        lat.value = Math.round(at.lat * ROUND) / ROUND;
        lon.value = Math.round(at.lng * ROUND) / ROUND;
        if (picked) picked.setLatLng(at);
        else picked = L.marker(at, { icon: L.divIcon({ className: "picked", html: "", iconSize: [14, 14] }) }).addTo(map);
        lat.dispatchEvent(new Event("change", { bubbles: true }));
      });
    }
    return map;
  }

  async function followImport(box) {
    const status = document.getElementById("import-status");
    const bar = document.getElementById("import-progress");
    try {
      await Sagip.pollJob(box.dataset.importJob, (job) => {
        bar.value = job.progress || 0;
        Sagip.announce(status, `A worker is reading the file (${job.status}, ${Math.round((job.progress || 0) * 100)} %).`);
      });
      window.location.reload();
    } catch (error) {
      if (error.message !== "signed out") Sagip.announce(status, `Could not follow the import (${error.message}); reload the page.`);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const element = document.getElementById("points-map");
    if (element && window.L && Sagip.map) showMap(element);
    const importing = document.querySelector("[data-import-job]");
    if (importing) followImport(importing);
  });
})();
