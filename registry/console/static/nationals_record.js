// A national's record: the location history drawn on the console's small map when the map script is
// there (the table of locations is the page's own answer either way).
"use strict";

(function () {
  const element = document.getElementById("location-map");
  if (!element || !window.Sagip || typeof window.Sagip.map !== "function") return;
  const points = JSON.parse(element.dataset.points || "[]");
  if (!points.length) return;
  element.hidden = false;
  const map = window.Sagip.map(element, {});
  const L = window.L;
  const latlngs = points.map((p) => [p.lat, p.lon]).reverse(); // oldest first, for the line
  if (latlngs.length > 1) L.polyline(latlngs, { weight: 2, dashArray: "4 4" }).addTo(map);
  points.forEach((p, index) => {
    const current = index === 0;
    L.circle([p.lat, p.lon], { radius: p.precision_m || 50, weight: 1, fillOpacity: current ? 0.15 : 0.05 }).addTo(map);
    L.circleMarker([p.lat, p.lon], { radius: current ? 7 : 4, weight: 2, fillOpacity: current ? 0.9 : 0.5 })
      .bindTooltip(`${current ? "Current: " : ""}${p.reported_at.slice(0, 16).replace("T", " ")} UTC, ${p.source}`)
      .addTo(map);
  });
  map.fitBounds(L.latLngBounds(latlngs).pad(0.5), { maxZoom: 10 });
})();
