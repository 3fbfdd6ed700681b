"""Human names for the categories of a statistics table (SPEC §11): country names, UN M49 sub-regions, ISCO-08
titles, age bands, months. The codes stay the table's; these are for people reading it (the console, reports).
"""
from __future__ import annotations

from datetime import date
from functools import lru_cache

from registry.codes import sources

DIMENSION_NAMES = {"host_country": "Host country", "region": "Region (UN M49)", "sex": "Sex",
                   "age_band": "Age band", "occupation": "Occupation (ISCO-08 major group)",
                   "occupation_submajor": "Occupation (ISCO-08 sub-major group)", "sector": "Sector",
                   "legal_status": "Legal status", "status": "Status", "month": "Month"}
SEXES = {"F": "Female", "M": "Male", "X": "Another / not stated"}
LEGAL_STATUSES = {"documented": "Documented", "undocumented": "Undocumented"}
STATUSES = {"abroad": "Abroad", "returned": "Returned", "missing": "Missing", "deceased": "Deceased",
            "unverified": "Unverified"}
UNKNOWN = "unknown"
# Read in their own order (by code); the others by their name.
ORDERED_BY_CODE = frozenset({"age_band", "month", "occupation", "occupation_submajor"})


def dimension_name(dimension: str) -> str:
    return DIMENSION_NAMES.get(dimension, dimension.replace("_", " ").capitalize())


def label(dimension: str, value) -> str:
    """The name of ``value``, a category of ``dimension``; "Unknown" for the missing-value category."""
    if value is None:
        return "Total"
    value = str(value)
    if value == UNKNOWN:
        return "Unknown"
    if dimension == "host_country":
        return _countries().get(value, value)
    if dimension == "region":
        return _regions().get(value, value)
    if dimension in ("occupation", "occupation_submajor"):
        title = _occupations().get(value)
        return f"{value} {title}" if title else value
    if dimension == "age_band":
        if value == "65+":
            return "65 and over"
        low, _, high = value.partition("-")
        return f"{int(low)}–{int(high)}" if low.isdigit() and high.isdigit() else value
    if dimension == "sex":
        return SEXES.get(value, value)
    if dimension == "legal_status":
        return LEGAL_STATUSES.get(value, value)
    if dimension == "status":
        return STATUSES.get(value, value)
    if dimension == "month":
        try:
            return date.fromisoformat(value + "-01").strftime("%b %Y")
        except ValueError:
            return value
    return value.capitalize() if value.islower() else value


def sort_key(dimension: str, value):
    """Categories in reading order: by code where the code is an order, else by name; unknown last."""
    if value is None or value == UNKNOWN:
        return (1, "")
    return (0, str(value) if dimension in ORDERED_BY_CODE else label(dimension, value).casefold())


@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    return {c.alpha2: c.name for c in sources.countries()}


@lru_cache(maxsize=1)
def _regions() -> dict[str, str]:
    return {row["m49"]: row["name"] for row in sources.m49() if row["level"] != "country"}


@lru_cache(maxsize=1)
def _occupations() -> dict[str, str]:
    return {g["code"]: g["title"] for g in sources.isco() if g["level"] <= 2}
