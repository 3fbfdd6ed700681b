// The registration form: host city suggested from the offline gazetteer as the user types (GET
// /api/v1/geocode with the session), and the page's refusal or duplicate warning brought into focus.
"use strict";

(function () {
  const problem = document.getElementById("duplicates") || document.getElementById("form-problem");
  if (problem) problem.focus();

  const city = document.querySelector("input[data-country-input]");
  if (!city) return;
  const country = document.getElementById(city.dataset.countryInput);
  const list = document.getElementById(city.getAttribute("list"));
  const status = document.getElementById(city.dataset.status);
  let timer = null;
  let asked = "";

  const named = (place) => (place.admin1 && place.admin1 !== place.name ? `${place.name}, ${place.admin1}` : place.name);

  function option(value, text) {
    const element = document.createElement("option");
    element.value = value;
    element.textContent = text;
    return element;
  }

  async function suggest() {
    const query = city.value.trim();
    const code = country.value;
    if (!code) {
      Sagip.announce(status, query ? "Choose the host country to look the city up." : "");
      return;
    }
    if (query.length < 3) {
      Sagip.announce(status, "");
      return;
    }
    const key = `${code}|${query}`;
    if (key === asked) return;
    asked = key;
    let answer;
    try {
      answer = await Sagip.api(`/geocode?country=${encodeURIComponent(code)}&q=${encodeURIComponent(query)}`);
    } catch (error) {
      Sagip.announce(status, "The gazetteer could not be asked now; the city is looked up when you register.");
      return;
    }
    if (key !== `${country.value}|${city.value.trim()}`) return; // typed on meanwhile
    list.replaceChildren();
    const match = answer.match;
    if (!match || match.source !== "geocoded_city") {
      Sagip.announce(status, "Not found in the gazetteer: check the spelling, or the country's reference point is used.");
      return;
    }
    const places = [match, ...(answer.alternatives || [])];
    const several = places.length > 1;
    for (const place of places) {
      const people = place.population ? ` (population ${place.population.toLocaleString("en")})` : "";
      list.append(option(several ? named(place) : place.name, `${named(place)}${people}`));
    }
    const others = places.length - 1;
    Sagip.announce(status, `${answer.fuzzy ? "Closest match" : "Found"}: ${named(match)}` +
      (others ? `; ${others} other place${others === 1 ? "" : "s"} of that name in the list.` : "."));
  }

  city.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, 300);
  });
  country.addEventListener("change", () => {
    asked = "";
    list.replaceChildren();
    suggest();
  });
})();
