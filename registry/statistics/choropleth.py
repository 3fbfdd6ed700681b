"""Stocks by host country for a map (SPEC §9, §11): the same suppressed table as
``GET /statistics/stocks?by=host_country``, with each country's name, label point and shading class.

Classes are quantiles of the published counts (at most ``CLASSES``), so a map of a few large and many small
countries still tells them apart; a suppressed country has no class (the map hatches it).
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from registry.extensions import db
from registry.nationals.models import Country
from registry.statistics import labels, tables

CLASSES = 5
# ColorBrewer "Blues" (sequential, colour-blind safe), light to dark.
COLOURS = {1: ("#3182bd",), 2: ("#9ecae1", "#3182bd"), 3: ("#deebf7", "#9ecae1", "#3182bd"),
           4: ("#c6dbef", "#6baed6", "#2171b5", "#084594"),
           5: ("#c6dbef", "#9ecae1", "#6baed6", "#2171b5", "#084594")}


def stocks_by_host_country(user, day: date) -> dict:
    """``{at, countries: [{code, name, count, suppressed, reason?, class, label}], classes: [{from, to, colour}],
    unknown, total, suppression}``: what the map of ``user`` (their jurisdiction, for embassy officers) shows."""
    answer = tables.stocks(user, ["host_country"], day)
    cells = [c for c in answer["cells"] if c["host_country"] != labels.UNKNOWN]
    unknown = next((c for c in answer["cells"] if c["host_country"] == labels.UNKNOWN), None)
    classes = _classes(sorted(c["count"] for c in cells if not c["suppressed"] and c["count"]))
    points = _label_points([c["host_country"] for c in cells])
    countries = []
    for cell in sorted(cells, key=lambda c: labels.sort_key("host_country", c["host_country"])):
        code = cell["host_country"]
        item = {"code": code, "name": labels.label("host_country", code), "count": cell["count"],
                "suppressed": cell["suppressed"], "class": None, "label": points.get(code)}
        if cell["suppressed"]:
            item["reason"] = cell["reason"]
        else:
            item["class"] = next(i for i, c in enumerate(classes) if cell["count"] <= c["to"])
        countries.append(item)
    total = next((t for t in answer["totals"] if t["host_country"] is None), None)
    return {"at": answer["at"], "countries": countries, "classes": classes,
            "unknown": None if unknown is None else {"count": unknown["count"], "suppressed": unknown["suppressed"]},
            "total": None if total is None else {"count": total["count"], "suppressed": total["suppressed"]},
            "suppression": answer["suppression"]}


def _classes(counts: list[int]) -> list[dict]:
    """Up to ``CLASSES`` ranges of the published counts (quantiles, without empty or overlapping ranges)."""
    if not counts:
        return []
    tops: list[int] = []
    for k in range(1, CLASSES + 1):
        top = counts[min(len(counts) - 1, -(-k * len(counts) // CLASSES) - 1)]
        if not tops or top > tops[-1]:
            tops.append(top)
    colours = COLOURS[len(tops)]
    ranges, low = [], counts[0]
    for i, top in enumerate(tops):
        ranges.append({"from": low, "to": top, "colour": colours[i]})
        low = top + 1
    return ranges


def _label_points(codes: list[str]) -> dict[str, list[float]]:
    """[lat, lon] of each country's label point (from the shipped boundaries)."""
    if not codes:
        return {}
    rows = db.session.execute(select(Country.alpha2, func.ST_Y(Country.label_point), func.ST_X(Country.label_point))
                              .where(Country.alpha2.in_(codes)))
    return {code: [round(lat, 4), round(lon, 4)] for code, lat, lon in rows if lat is not None}
