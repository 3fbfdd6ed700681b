// A national's record: the location history on a small map (Sagip.map, offline base layer). The table of
// locations beside it is the page's own answer; the map only adds the picture.
"use strict";

(function () {
  const element = document.getElementById("location-map");
  if (!element || typeof window.L === "undefined" || !window.Sagip || typeof window.Sagip.map !== "function") return;
  const points = JSON.parse(element.dataset.points || "[]"); // newest first
  if (!points.length) return;
  element.hidden = false;
  const path = points.map((p) => [p.lat, p.lon]).reverse(); // oldest first
  const area = L.latLngBounds(path);
  points.forEach((p) => area.extend(L.latLng(p.lat, p.lon).toBounds(2 * (p.precision_m || 50))));
  const map = window.Sagip.map(element, { bounds: area, maxZoom: 11 });
  if (path.length > 1) L.polyline(path, { color: "#0b5cad", weight: 2, dashArray: "4 6" }).addTo(map);
  points.forEach((p, index) => {
    const current = index === 0;
    const when = `${p.reported_at.slice(0, 16).replace("T", " ")} UTC`;
    L.circle([p.lat, p.lon], { radius: p.precision_m || 50, color: "#0b5cad", weight: 1,
      fillOpacity: current ? 0.12 : 0.04, interactive: false }).addTo(map);
    L.circleMarker([p.lat, p.lon], { radius: current ? 7 : 4, color: current ? "#a4161a" : "#0b5cad", weight: 2,
      fillOpacity: current ? 0.9 : 0.5 })
      .bindTooltip(`${current ? "Current location, " : ""}${when}`)
      .addTo(map);
  });
})();
