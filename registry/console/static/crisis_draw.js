// Declaring a crisis: the area drawn on the map is written into the form's fields, and the fields are drawn
// on the map (the fields are the keyboard's way; the server reads only them). A circle: click the centre,
// drag the round handle for the radius. A polygon: click each vertex, then "Finish polygon".
"use strict";

(function () {
  const ROUND = 100000; // five decimals: about a metre
  const round = (v) => Math.round(v * ROUND) / ROUND;
  const $ = (id) => document.getElementById(id);
  const number = (id) => { const v = parseFloat(($(id).value || "").replace(",", ".")); return Number.isFinite(v) ? v : null; };

  function chosenType() {
    const checked = document.querySelector("[data-area-type]:checked");
    return checked ? checked.value : "circle";
  }

  function showParts() {
    const type = chosenType();
    for (const part of document.querySelectorAll("[data-area-part]")) part.hidden = part.dataset.areaPart !== type;
  }

  // The point `km` east of (lat, lon), for the radius handle.
  function eastOf(lat, lon, km) {
    const perDegree = 111.32 * Math.max(0.01, Math.cos((lat * Math.PI) / 180));
    return L.latLng(lat, lon + km / perDegree);
  }

  function vertices() {
    return ($("vertices").value || "").split("\n").map((line) => line.split(/[\s,;]+/).filter(Boolean).map(Number))
      .filter((p) => p.length === 2 && p.every(Number.isFinite)).map(([lat, lon]) => L.latLng(lat, lon));
  }

  function setUp(element) {
    const lat = number("center_lat"), lon = number("center_lon");
    const drawn = vertices();
    const options = lat !== null && lon !== null ? { center: [lat, lon], zoom: 8 }
      : drawn.length ? { bounds: drawn.map((p) => [p.lat, p.lng]) } : {};
    const map = Sagip.map(element, options);
    element.sagipMap = map; // for tests and the page-weight bench
    const layer = L.layerGroup().addTo(map);
    let finished = drawn.length >= 3;

    function drawCircle() {
      const la = number("center_lat"), lo = number("center_lon"), r = number("radius_km");
      if (la === null || lo === null) return;
      L.circleMarker([la, lo], { radius: 4, color: "#b3261e", className: "crisis-centre" }).addTo(layer);
      if (r === null || r <= 0) return;
      L.circle([la, lo], { radius: r * 1000, color: "#b3261e", weight: 2, fillOpacity: 0.15, className: "drawn-area" }).addTo(layer);
      const handle = L.marker(eastOf(la, lo, r), {
        draggable: true, keyboard: false, title: "Drag to set the radius",
        icon: L.divIcon({ className: "radius-handle", html: "", iconSize: [16, 16] }),
      }).addTo(layer);
      handle.on("drag", (event) => {
        $("radius_km").value = Math.max(0.1, Math.round(map.distance([la, lo], event.target.getLatLng()) / 100) / 10);
        layer.eachLayer((l) => { if (l instanceof L.Circle) l.setRadius(number("radius_km") * 1000); });
      });
      handle.on("dragend", redraw);
    }

    function drawPolygon() {
      const points = vertices();
      for (const p of points) L.circleMarker(p, { radius: 4, color: "#b3261e", className: "vertex" }).addTo(layer);
      if (points.length >= 3 && finished) {
        L.polygon(points, { color: "#b3261e", weight: 2, fillOpacity: 0.15, className: "drawn-area" }).addTo(layer);
      } else if (points.length >= 2) {
        L.polyline(points, { color: "#b3261e", weight: 2, dashArray: "4 4" }).addTo(layer);
      }
    }

    function redraw() {
      layer.clearLayers();
      const type = chosenType();
      if (type === "circle") drawCircle();
      else if (type === "polygon") drawPolygon();
    }

    map.on("click", (event) => {
      const at = event.latlng.wrap();
      const type = chosenType();
      if (type === "circle") {
        $("center_lat").value = round(at.lat);
        $("center_lon").value = round(at.lng);
        if (number("radius_km") === null) {
          const bounds = map.getBounds();
          const across = map.distance([at.lat, bounds.getWest()], [at.lat, bounds.getEast()]) / 1000;
          $("radius_km").value = Math.max(1, Math.round(across / 10));
        }
      } else if (type === "polygon") {
        if (finished) { $("vertices").value = ""; finished = false; }
        const text = $("vertices").value.replace(/\s+$/, "");
        $("vertices").value = `${text ? text + "\n" : ""}${round(at.lat)}, ${round(at.lng)}`;
      } else {
        return;
      }
      redraw();
    });

    for (const id of ["center_lat", "center_lon", "radius_km", "vertices"]) $(id).addEventListener("input", redraw);
    $("finish-polygon").addEventListener("click", () => {
      finished = vertices().length >= 3;
      Sagip.announce($("draw-hint"), finished ? "The polygon is closed." : "A polygon needs at least 3 vertices.");
      redraw();
    });
    $("clear-polygon").addEventListener("click", () => { $("vertices").value = ""; finished = false; redraw(); });
    for (const radio of document.querySelectorAll("[data-area-type]")) {
      radio.addEventListener("change", () => { showParts(); redraw(); });
    }
    redraw();
  }

  document.addEventListener("DOMContentLoaded", () => {
    showParts();
    const element = $("draw-map");
    if (element && window.L && Sagip.map) setUp(element);
  });
})();
