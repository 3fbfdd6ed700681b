// Sagip console maps: Leaflet (pip xstatic-leaflet, served by the console) over an offline base layer drawn
// in the browser from the service's own country boundaries, tile by tile (/console/basemap/{z}/{x}/{y}.json).
// REGISTRY_TILE_URL, when set, adds an online tile layer above it (body[data-tile-url]).
"use strict";

(function () {
  const BASEMAP_MAX_ZOOM = 12; // the server's deepest tiles; deeper views redraw them larger
  const LAND = "#f4f1ea", BORDER = "#8a96a3", LABEL = "#4a5560";
  const fetched = new Map(); // "z/x/y" → Promise of the tile's GeoJSON

  function tileData(z, x, y) {
    const key = `${z}/${x}/${y}`;
    if (!fetched.has(key)) {
      fetched.set(key, fetch(`/console/basemap/${key}.json`, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : { features: [] }))
        .catch(() => ({ features: [] })));
    }
    return fetched.get(key);
  }

  // Web Mercator pixel of (lon, lat) at zoom z, relative to the tile (tx, ty).
  function pixel(lon, lat, z, tx, ty, size) {
    const scale = size * 2 ** z;
    const sin = Math.sin((Math.max(-85.06, Math.min(85.06, lat)) * Math.PI) / 180);
    const px = ((lon + 180) / 360) * scale - tx * size;
    const py = (0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)) * scale - ty * size;
    return [px, py];
  }

  function drawRings(ctx, rings, z, tx, ty, size) {
    for (const ring of rings) {
      ring.forEach(([lon, lat], i) => {
        const [px, py] = pixel(lon, lat, z, tx, ty, size);
        if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      });
      ctx.closePath();
    }
  }

  const BaseLayer = L.GridLayer.extend({
    createTile(coords, done) {
      const size = this.getTileSize().x;
      const tile = document.createElement("canvas");
      tile.width = size;
      tile.height = size;
      const shift = Math.max(0, coords.z - BASEMAP_MAX_ZOOM);
      const source = [coords.z - shift, coords.x >> shift, coords.y >> shift];
      tileData(...source).then((data) => {
        const ctx = tile.getContext("2d");
        ctx.fillStyle = LAND;
        ctx.strokeStyle = BORDER;
        ctx.lineWidth = 0.8;
        ctx.lineJoin = "round";
        const fill = this.options.fill;
        for (const feature of data.features) {
          const g = feature.geometry || { type: "none" };
          const polygons = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
          ctx.fillStyle = (fill && fill(feature.properties.code, ctx)) || LAND;
          ctx.beginPath();
          for (const polygon of polygons) drawRings(ctx, polygon, coords.z, coords.x, coords.y, size);
          ctx.fill("evenodd");
          ctx.stroke();
        }
        if (coords.z >= 3) {
          ctx.fillStyle = LABEL;
          ctx.font = "12px system-ui, sans-serif";
          ctx.textAlign = "center";
          for (const feature of data.features) {
            const label = feature.properties.label;
            if (!label) continue;
            const [px, py] = pixel(label[0], label[1], coords.z, coords.x, coords.y, size);
            const half = ctx.measureText(feature.properties.name).width / 2;
            if (px + half >= 0 && px - half < size && py + 12 >= 0 && py - 12 < size) {
              ctx.fillText(feature.properties.name, px, py); // neighbours draw the rest of a name they share
            }
          }
        }
        done(null, tile);
      });
      return tile;
    },
  });

  // A map on `element` with the base layer; options: center [lat, lon] and zoom, or bounds [[s, w], [n, e]];
  // fill(code, ctx): a country's fill style (a colour or a canvas pattern) instead of the land's, or null.
  window.Sagip = window.Sagip || {};
  window.Sagip.map = function (element, options = {}) {
    const map = L.map(element, { worldCopyJump: true, minZoom: 1, maxZoom: 18, zoomSnap: 1 });
    new BaseLayer({ attribution: "Boundaries: Natural Earth", fill: options.fill }).addTo(map);
    const tiles = document.body.dataset.tileUrl;
    if (tiles) L.tileLayer(tiles, { attribution: "Tiles: configured provider", maxZoom: 18 }).addTo(map);
    if (options.bounds) map.fitBounds(options.bounds, { maxZoom: options.maxZoom || 12 });
    else map.setView(options.center || [20, 60], options.zoom || 3);
    return map;
  };
})();
