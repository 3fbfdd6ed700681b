// The statistics page's map: stocks by host country (GET /console/statistics/map.json, the same suppressed
// table as the API's by=host_country), each country shaded by its class over the offline base map; suppressed
// countries hatched grey. A legend, a text summary and the numbers as a table are written beside it.
"use strict";

(function () {
  const HATCH_BACK = "#d9d9d9", HATCH_LINE = "#6b6b6b";

  function hatch(ctx) {
    const tile = document.createElement("canvas");
    tile.width = 8;
    tile.height = 8;
    const c = tile.getContext("2d");
    c.fillStyle = HATCH_BACK;
    c.fillRect(0, 0, 8, 8);
    c.strokeStyle = HATCH_LINE;
    c.lineWidth = 1.2;
    c.beginPath();
    c.moveTo(0, 8); c.lineTo(8, 0);
    c.moveTo(-2, 2); c.lineTo(2, -2);
    c.moveTo(6, 10); c.lineTo(10, 6);
    c.stroke();
    return ctx.createPattern(tile, "repeat");
  }

  const number = (n) => n.toLocaleString("en");

  function legendItem(list, swatchClass, colour, text) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch " + swatchClass;
    swatch.setAttribute("aria-hidden", "true");
    if (colour) swatch.dataset.colour = colour;
    item.append(swatch, document.createTextNode(text));
    list.append(item);
    return swatch;
  }

  function writeLegend(answer) {
    const list = document.getElementById("map-legend");
    if (!list) return;
    list.replaceChildren();
    answer.classes.forEach((range, i) => {
      const text = range.from === range.to ? number(range.from) : `${number(range.from)} to ${number(range.to)}`;
      legendItem(list, `class-${i}`, range.colour, text + " nationals");
    });
    const threshold = answer.suppression.threshold;
    legendItem(list, "hatched", null, `suppressed (fewer than ${threshold}, or hidden so a small count cannot be worked out)`);
    legendItem(list, "none", null, "none counted");
    // The swatches' colours come with the data, and the CSP allows no inline style: each is a small canvas.
    for (const swatch of list.querySelectorAll(".swatch[data-colour]")) {
      const canvas = document.createElement("canvas");
      canvas.width = 14;
      canvas.height = 14;
      const c = canvas.getContext("2d");
      c.fillStyle = swatch.dataset.colour;
      c.fillRect(0, 0, 14, 14);
      swatch.append(canvas);
    }
    const hatched = list.querySelector(".swatch.hatched");
    if (hatched) {
      const canvas = document.createElement("canvas");
      canvas.width = 14;
      canvas.height = 14;
      const c = canvas.getContext("2d");
      c.fillStyle = hatch(c);
      c.fillRect(0, 0, 14, 14);
      hatched.append(canvas);
    }
  }

  function writeTable(answer) {
    const body = document.querySelector("#map-table tbody");
    if (!body) return;
    body.replaceChildren();
    for (const country of answer.countries) {
      const row = document.createElement("tr");
      row.dataset.code = country.code;
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = country.name;
      const count = document.createElement("td");
      count.className = "num";
      count.textContent = country.suppressed ? "suppressed" : number(country.count);
      row.append(name, count);
      body.append(row);
    }
  }

  function summary(answer) {
    const shaded = answer.countries.filter((c) => !c.suppressed).length;
    const hidden = answer.countries.length - shaded;
    if (!answer.countries.length) return `Nobody is counted abroad at the end of ${answer.at}.`;
    let text = `${shaded} host ${shaded === 1 ? "country" : "countries"} shaded`;
    if (hidden) text += `, ${hidden} suppressed (hatched)`;
    if (answer.total && !answer.total.suppressed) text += `; ${number(answer.total.count)} nationals abroad in all`;
    return text + ".";
  }

  function boundsOf(answer) {
    const points = answer.countries.map((c) => c.label).filter(Boolean);
    if (!points.length) return null;
    const lats = points.map((p) => p[0]), lons = points.map((p) => p[1]);
    return [[Math.min(...lats) - 6, Math.min(...lons) - 8], [Math.max(...lats) + 6, Math.max(...lons) + 8]];
  }

  async function start(element) {
    const status = document.getElementById("map-summary");
    let answer;
    try {
      const response = await fetch(element.dataset.source, { credentials: "same-origin",
        headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(response.statusText);
      answer = await response.json();
    } catch (error) {
      Sagip.announce(status, "The map could not be loaded; the table holds the numbers.");
      return;
    }
    const byCode = new Map(answer.countries.map((c) => [c.code, c]));
    const fill = (code, ctx) => {
      const country = byCode.get(code);
      if (!country) return null;
      if (country.suppressed) return hatch(ctx);
      return answer.classes[country.class].colour;
    };
    const bounds = boundsOf(answer);
    const map = Sagip.map(element, bounds ? { bounds, maxZoom: 5, fill } : { center: [20, 40], zoom: 2, fill });
    element.dataset.ready = "true";
    element.dataset.shaded = String(answer.countries.filter((c) => !c.suppressed).length);
    element.dataset.hatched = String(answer.countries.filter((c) => c.suppressed).length);
    writeLegend(answer);
    writeTable(answer);
    Sagip.announce(status, summary(answer));
    window.addEventListener("resize", () => map.invalidateSize());
  }

  document.addEventListener("DOMContentLoaded", () => {
    const element = document.getElementById("stocks-map");
    if (element) start(element);
  });
})();
