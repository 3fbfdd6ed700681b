"""Offline geocoding: host country + city (+ admin-1) → a point, from the GeoNames gazetteer in geodata/.

The gazetteer (``geodata/gazetteer.csv.gz``, built by ``geodata/build_gazetteer.py``)
holds the GeoNames cities of 15,000 people or more, each with its admin-1 name,
population and the lookup keys of all its names (official, ASCII, alternate, in
any script). A key is the name transliterated to ASCII (anyascii), lower-cased,
punctuation removed; each name also yields variants without an Arabic article
("Al Kuwayt" → "kuwayt"), without a trailing "city" and without spaces, so
"Kuwait City", "Al Kuwayt", "KUWAIT" and "الكويت" all find Kuwait City.

Lookups are in memory (one dict per process, loaded on first use): the import
geocodes every row without a database round trip. Ambiguous names go to the
most populous place (an admin-1 hint given as "City, Region" wins over
population); the others are returned as ``alternatives``. Names not found
exactly are tried fuzzily within the country.
"""
from __future__ import annotations

import csv
import difflib
import gzip
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from anyascii import anyascii

GAZETTEER = Path(__file__).resolve().parent.parent / "geodata" / "gazetteer.csv.gz"
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_ARTICLES = ("al ", "el ", "ad ", "ar ", "as ", "at ", "az ", "an ", "ash ", "adh ", "ath ")
_SUFFIXES = (" city", " shi", " si", " town")
# "City of …" written before the name: Arabic madinat (مدينة, transliterated "mdynh").
_PREFIXES = ("madinat ", "madinah ", "mdynh ")
_ARABIC_ARTICLE = "\u0627\u0644"  # "ال", joined to the word it precedes
FUZZY_CUTOFF = 0.82
MAX_ALTERNATIVES = 5


def place_key(text: str) -> str:
    """The lookup form of a place name: ASCII, lower case, words separated by one space."""
    return _NOT_ALNUM.sub(" ", anyascii(text).lower()).strip()


def place_variants(text: str) -> set[str]:
    """The keys a name is found under: itself, without its article or "city", and without spaces."""
    keys = set()
    for form in _forms(text):
        keys |= _key_variants(place_key(form))
    return keys


def _forms(text: str) -> set[str]:
    """The name, and in Arabic script also without the article "ال" written onto each word."""
    forms = {text}
    if _ARABIC_ARTICLE in text:
        forms.add(" ".join(w[2:] if w.startswith(_ARABIC_ARTICLE) and len(w) > 3 else w for w in text.split()))
    return forms


def _key_variants(key: str) -> set[str]:
    if not key:
        return set()
    keys = {key}
    for prefix in _PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix) + 2:
            keys.add(key[len(prefix):])
    for variant in list(keys):
        for article in _ARTICLES:
            if variant.startswith(article) and len(variant) > len(article) + 2:
                keys.add(variant[len(article):])
    for variant in list(keys):
        for suffix in _SUFFIXES:
            if variant.endswith(suffix) and len(variant) > len(suffix) + 2:
                keys.add(variant[:-len(suffix)])
    keys |= {k.replace(" ", "") for k in keys}
    return keys


def precision_for_population(population: int) -> float:
    """City-level precision in metres: the radius of a city of that size at ~2,500 people per km²."""
    radius_m = math.sqrt(max(population, 1) / 2500 / math.pi) * 1000
    return float(min(max(round(radius_m, -2), 2000.0), 30000.0))


@dataclass(frozen=True)
class Place:
    geonameid: int
    country: str
    name: str
    admin1: str
    lat: float
    lon: float
    population: int

    @property
    def precision_m(self) -> float:
        return precision_for_population(self.population)

    def as_dict(self) -> dict:
        return {"geonameid": self.geonameid, "name": self.name, "admin1": self.admin1 or None,
                "country": self.country, "lat": self.lat, "lon": self.lon, "population": self.population,
                "precision_m": self.precision_m}


@dataclass(frozen=True)
class Match:
    place: Place
    alternatives: tuple[Place, ...]
    fuzzy: bool  # found by similarity, not by one of its names


class Gazetteer:
    def __init__(self, places: list[Place], keys: dict[tuple[str, str], list[int]]):
        self.places = places
        self._keys = keys
        # Fuzzy candidates: the keys of a country by first letter and length (a typo rarely hits the first
        # letter), so a miss compares against hundreds of keys, not the tens of thousands of a big country.
        self._by_initial: dict[tuple[str, str], dict[int, list[str]]] = {}
        for country, key in keys:
            self._by_initial.setdefault((country, key[0]), {}).setdefault(len(key), []).append(key)

    @classmethod
    def load(cls, path: Path = GAZETTEER) -> Gazetteer:
        places: list[Place] = []
        keys: dict[tuple[str, str], list[int]] = {}
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                index = len(places)
                places.append(Place(int(row["geonameid"]), row["country"], row["name"], row["admin1"],
                                    float(row["lat"]), float(row["lon"]), int(row["population"])))
                for key in row["keys"].split("|"):
                    keys.setdefault((row["country"], key), []).append(index)
        for indices in keys.values():
            indices.sort(key=lambda i: -places[i].population)
        return cls(places, keys)

    def countries(self) -> set[str]:
        return {country for country, _ in self._by_initial}

    def lookup(self, country: str, query: str) -> Match | None:
        """The best place named ``query`` in ``country`` ("City" or "City, Admin-1"), or None."""
        name, _, region = query.partition(",")
        candidates = self._exact(country, name)
        fuzzy = False
        if not candidates:
            candidates, fuzzy = self._fuzzy(country, name), True
        if not candidates:
            return None
        if region.strip():
            wanted = _region_variants(country, region.strip())
            preferred = [p for p in candidates if place_variants(p.admin1) & wanted]
            candidates = preferred + [p for p in candidates if p not in preferred]
        return Match(candidates[0], tuple(candidates[1:1 + MAX_ALTERNATIVES]), fuzzy)

    def _exact(self, country: str, name: str) -> list[Place]:
        seen: dict[int, Place] = {}
        for key in place_variants(name):
            for index in self._keys.get((country, key), ()):
                seen.setdefault(index, self.places[index])
        return sorted(seen.values(), key=lambda p: -p.population)

    def _fuzzy(self, country: str, name: str) -> list[Place]:
        key = place_key(name)
        if len(key) < 4:
            return []
        by_length = self._by_initial.get((country, key[0]), {})
        spread = max(2, len(key) // 5)
        candidates = [k for length in range(len(key) - spread, len(key) + spread + 1) for k in by_length.get(length, ())]
        close = difflib.get_close_matches(key, candidates, n=5, cutoff=FUZZY_CUTOFF)
        return self._exact(country, close[0]) if close else []


def _region_variants(country: str, region: str) -> set[str]:
    """Keys of an admin-1 hint: its name, or the name of the ISO 3166-2 code it is ("IL" → Illinois)."""
    wanted = place_variants(region)
    if len(region) <= 3 and region.isalnum():
        import pycountry
        subdivision = pycountry.subdivisions.get(code=f"{country}-{region.upper()}")
        if subdivision is not None:
            wanted |= place_variants(subdivision.name)
    return wanted


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The process's gazetteer, loaded once (about a second, ~35,000 places)."""
    return Gazetteer.load()
