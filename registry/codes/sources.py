"""The data behind the code lists, read once from ``registry/data`` (see its README for sources and licences)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources

import pycountry

from registry.validation import EXTRA_COUNTRIES


@dataclass(frozen=True)
class Alias:
    """One row of a mapping table: a written value, the codes it names (one: mapped; several: ambiguous,
    refused with those candidates; none: not a value of this kind at all), its language and a note."""
    value: str
    codes: tuple[str, ...]
    language: str
    note: str
    source: str


def read_text(name: str) -> str:
    return resources.files("registry.data").joinpath(name).read_text(encoding="utf-8")


def read_table(name: str, delimiter: str = ",") -> list[dict]:
    return list(csv.DictReader(io.StringIO(read_text(name)), delimiter=delimiter, quoting=csv.QUOTE_NONE
                               if delimiter == "\t" else csv.QUOTE_MINIMAL))


@lru_cache(maxsize=None)
def aliases(name: str) -> tuple[Alias, ...]:
    """A mapping table (``*.tsv``: value, code, language, note; several codes separated by spaces)."""
    return tuple(Alias(row["value"], tuple(row["code"].split()), row["language"], row["note"], name)
                 for row in read_table(name, "\t") if row["value"].strip())


@lru_cache(maxsize=1)
def isco() -> tuple[dict, ...]:
    """ISCO-08 groups: ``code``, ``level`` (1–4), ``title``."""
    return tuple({"code": row["code"], "level": int(row["level"]), "title": row["title"]}
                 for row in read_table("isco08.csv"))


@lru_cache(maxsize=1)
def m49() -> tuple[dict, ...]:
    """The UN M49 table: ``m49``, ``level``, ``name``, ``parent``, ``alpha3``, ``alpha2``."""
    return tuple(read_table("m49.csv"))


@dataclass(frozen=True)
class Country:
    alpha2: str
    alpha3: str | None
    numeric: str | None
    name: str
    official_name: str | None
    pycountry_names: tuple[str, ...]


@lru_cache(maxsize=1)
def countries() -> tuple[Country, ...]:
    """ISO 3166-1 from pycountry, and Kosovo (``XK``, user-assigned)."""
    found = []
    for c in pycountry.countries:
        names = tuple(dict.fromkeys(n for n in (c.name, getattr(c, "official_name", None),
                                                getattr(c, "common_name", None)) if n))
        found.append(Country(c.alpha_2, c.alpha_3, c.numeric, getattr(c, "common_name", None) or c.name,
                             getattr(c, "official_name", None), names))
    found += [Country(code, "XKX" if code == "XK" else None, None, name, None, (name,))
              for code, name in EXTRA_COUNTRIES.items()]
    return tuple(sorted(found, key=lambda c: c.alpha2))


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"
