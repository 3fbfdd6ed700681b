// The map of nationals: on each view change (debounced) the page asks GET /api/v1/map/nationals for the
// view's clusters (the server clusters them in PostGIS, within the caller's reach), aborting a request the
// next view made stale, and draws each cluster as a circle with its count and each single person as a dot
// that opens their record. The open crises' areas and rings (from the page) are drawn under them. The
// total in view is written in a live text summary.
"use strict";

(function () {
  const DEBOUNCE_MS = 250;
  const FILTERS = ["status", "vulnerability", "certainty"];

  function wrapLon(lon) {
    return ((((lon + 180) % 360) + 360) % 360) - 180;
  }

  // The view as the API reads it: longitudes within -180..180 (west > east across the antimeridian).
  function bboxOf(map) {
    const b = map.getBounds();
    const south = Math.max(-90, b.getSouth()), north = Math.min(90, b.getNorth());
    let west = b.getWest(), east = b.getEast();
    if (east - west >= 360) { west = -180; east = 180; } else { west = wrapLon(west); east = wrapLon(east); }
    if (west === east) east = west + 1e-6;
    const r = (v) => Math.round(v * 1e5) / 1e5;
    return [r(west), r(south), r(east), r(north)].join(",");
  }

  // A longitude moved by whole turns next to the view's centre (the map may show a wrapped world copy).
  function near(lon, centre) {
    return lon + 360 * Math.round((centre - lon) / 360);
  }

  function clusterIcon(count) {
    const size = count < 10 ? 28 : count < 100 ? 34 : count < 1000 ? 40 : count < 10000 ? 46 : 54;
    const label = count.toLocaleString("en");
    const html = `<span aria-hidden="true">${label}</span><span class="visually-hidden">${label} nationals</span>`;
    const grade = count < 100 ? "small" : count < 10000 ? "medium" : "large";
    return L.divIcon({ className: `cluster-icon ${grade}`, html, iconSize: [size, size] });
  }

  const POINT_ICON = L.divIcon({ className: "point-icon", iconSize: [14, 14],
    html: '<span class="visually-hidden">One national: open the record</span>' });

  function drawCrises(map, crises) {
    const layer = L.layerGroup().addTo(map);
    for (const crisis of crises) {
      const rings = [...(crisis.rings || [])].sort((a, b) => b.km - a.km);
      for (const ring of rings) {
        L.geoJSON(ring.geometry, { interactive: false, style: { color: "#b03a2e", weight: 1, dashArray: "4 4",
          fillColor: "#d64541", fillOpacity: 0.05 } }).addTo(layer);
      }
      L.geoJSON(crisis.area, { style: { color: "#b03a2e", weight: 2, fillColor: "#d64541", fillOpacity: 0.25 } })
        .bindTooltip(crisis.name).addTo(layer);
    }
    return layer;
  }

  function start(element) {
    const bounds = JSON.parse(element.dataset.bounds || "null");
    const crises = JSON.parse(element.dataset.crises || "[]");
    const map = Sagip.map(element, bounds ? { bounds, maxZoom: 8 } : { center: [20, 60], zoom: 3 });
    drawCrises(map, crises);
    const clusters = L.layerGroup().addTo(map);
    const summary = document.getElementById("map-summary");
    const form = document.getElementById("map-filters");
    let pending = null, timer = null;

    function filters() {
      const query = new URLSearchParams();
      for (const name of FILTERS) {
        const field = form && form.elements.namedItem(name);
        if (field && field.value) query.set(name, field.value);
      }
      return query;
    }

    function draw(answer) {
      const centre = map.getCenter().lng;
      clusters.clearLayers();
      for (const c of answer.clusters) {
        L.marker([c.lat, near(c.lon, centre)], { icon: clusterIcon(c.count), title: `${c.count} nationals`,
          keyboard: true }).on("click", () => map.setView([c.lat, near(c.lon, centre)], Math.min(18, map.getZoom() + 2)))
          .addTo(clusters);
      }
      for (const p of answer.points) {
        L.marker([p.lat, near(p.lon, centre)], { icon: POINT_ICON, title: "One national: open the record" })
          .on("click", () => window.location.assign(`/console/nationals/${p.id}`))
          .addTo(clusters);
      }
      element.dataset.total = answer.total;
      const groups = answer.clusters.length + answer.points.length;
      Sagip.announce(summary, `${answer.total.toLocaleString("en")} national${answer.total === 1 ? "" : "s"} in view`
        + (groups ? ` in ${groups} group${groups === 1 ? "" : "s"} on the map.` : "."));
    }

    async function load() {
      if (pending) pending.abort();
      const controller = new AbortController();
      pending = controller;
      const query = filters();
      query.set("bbox", bboxOf(map));
      query.set("zoom", String(map.getZoom()));
      element.setAttribute("aria-busy", "true");
      try {
        draw(await Sagip.api(`/map/nationals?${query}`, { signal: controller.signal }));
      } catch (error) {
        if (error.name === "AbortError" || error.message === "signed out") return;
        Sagip.announce(summary, `The map could not load the nationals in view (${error.message}). Zoom in or move the map.`);
      } finally {
        if (pending === controller) { pending = null; element.removeAttribute("aria-busy"); }
      }
    }

    function soon() {
      clearTimeout(timer);
      timer = setTimeout(load, DEBOUNCE_MS);
    }

    map.on("moveend", soon);
    if (form) {
      form.addEventListener("change", () => {
        const query = filters();
        window.history.replaceState(null, "", `${window.location.pathname}${query.toString() ? "?" + query : ""}`);
        load();
      });
    }
    load();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const element = document.getElementById("nationals-map");
    if (element && window.L && window.Sagip && Sagip.map) start(element);
  });
})();
