// A crisis page: follows the exposure run by polling (console run.json: status and progress) until it ends (then loads the page again, with
// the counts); draws the area and its rings, and the current filter's exposed people as the server grouped
// them (console map.json: counts and mean positions on a grid, never a whole large run).
"use strict";

(function () {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const percent = (value) => `${Math.round((value || 0) * 100)} %`;
  const AREA = { color: "#b3261e", weight: 2, fillOpacity: 0.12 };
  const RING = { color: "#b3261e", weight: 1.5, dashArray: "6 6", fill: false };

  async function followRun(section) {
    const status = document.getElementById("run-status");
    const bar = document.getElementById("run-progress");
    const detail = document.getElementById("run-detail");
    for (;;) {
      try {
        const run = await getJson(section.dataset.runUrl);
        if (run.status === "succeeded" || run.status === "failed") {
          Sagip.announce(status, `${run.status}: loading the counts…`);
          window.location.reload();
          return;
        }
        let text = `Version ${run.version}: ${run.status}: a worker is finding the people exposed; this page follows it`;
        if (run.progress !== null && run.progress !== undefined) {
          bar.value = run.progress;
          detail.textContent = percent(run.progress);
          text += ` (${percent(run.progress)})`;
        }
        Sagip.announce(status, text);
      } catch (error) {
        Sagip.announce(status, `Could not read the run's status (${error.message}); trying again.`);
      }
      await sleep(1000);
    }
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(response.statusText || String(response.status));
    return response.json();
  }

  function groupMarker(lat, lon, n, zone) {
    if (n === 1) {
      return L.circleMarker([lat, lon], { radius: 5, weight: 1, color: "#ffffff", fillOpacity: 0.9,
        fillColor: zone === "inside" ? "#0b5cad" : "#c46e00", className: `exposed ${zone}` });
    }
    const size = Math.min(46, 20 + 6 * Math.log10(n));
    return L.marker([lat, lon], { keyboard: false, icon: L.divIcon({
      className: `group-icon ${zone}`, html: String(n), iconSize: [size, size] }) });
  }

  async function showMap(element) {
    const bounds = element.dataset.bounds ? JSON.parse(element.dataset.bounds) : null;
    const map = Sagip.map(element, bounds ? { bounds, maxZoom: 12 } : {});
    element.sagipMap = map;
    const status = document.getElementById("map-status");
    try {
      const [shapes, points] = await Promise.all([getJson(element.dataset.areaUrl), getJson(element.dataset.pointsUrl)]);
      for (const ring of shapes.rings.slice().reverse()) {
        L.geoJSON(ring.geometry, { style: RING, interactive: false }).addTo(map);
      }
      L.geoJSON(shapes.area, { style: AREA, interactive: false }).addTo(map);
      const layer = L.layerGroup().addTo(map);
      let people = 0;
      for (const [lat, lon, n, zone] of points.groups) {
        people += n;
        groupMarker(lat, lon, n, zone).bindTooltip(`${n} ${n === 1 ? "person" : "people"}, ${zone === "inside" ? "inside the area" : "in a ring"}`).addTo(layer);
      }
      let text = `${people} on the map`;
      if (points.unlocated) text += `; ${points.unlocated} known only by country`;
      if (points.truncated) text += " (the largest groups only)";
      Sagip.announce(status, text + ".");
      element.dataset.loaded = "true";
    } catch (error) {
      Sagip.announce(status, `The map could not load its data (${error.message}).`);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const run = document.querySelector("[data-crisis-follow]");
    if (run) followRun(run);
    const element = document.querySelector("[data-crisis-map]");
    if (element && window.L && Sagip.map) showMap(element);
  });
})();
