"""``/console/statistics``: the migration profile's tables, a chart and a map (SPEC §9, §11). Analysts,
embassy officers (their jurisdiction's), coordinators and administrators.

A GET form (no personal data in it: a day, a kind of flow, dimensions) asks ``registry.statistics.tables``
for the same suppressed answer as ``GET /api/v1/statistics/stocks|flows``; the page draws it as a table with
its margins and human names, a bar chart of the first dimension's totals (inline SVG, drawn here: no script,
no library), links to the same query as CSV, HXL and SDMX-CSV through the API, and a map of stocks by host
country (``/console/statistics/map.json``, shaded by ``static/statistics.js`` over the offline base map).
Nothing on the page names or links to a person.
"""
from __future__ import annotations

import itertools
from datetime import date
from urllib.parse import urlencode

from flask import g, jsonify, request

from registry.audit import services as audit
from registry.console import bp
from registry.console.pages import refuse_with, render, requires_page
from registry.errors import Unprocessable
from registry.statistics import choropleth, labels, tables

PERMISSION = "statistics:read"
FIELDS = ("mode", "at", "kind", "from", "to", "by1", "by2", "by3")
DIMENSION_FIELDS = ("by1", "by2", "by3")
FLOW_DIMENSIONS = tuple(d for d in tables.DIMENSIONS if d != "status")
DEFAULT_DIMENSIONS = ("host_country", "sex")
ROW_LIMIT = 300  # rows of the table on the page; the downloads hold every row
BAR_LIMIT = 30  # bars of the chart
ZERO = {"count": 0, "suppressed": False}


@bp.get("/statistics", endpoint="statistics")
@requires_page(PERMISSION)
def statistics_page():
    form = _form(request.args)
    context = {"form": form, "dimensions": tables.DIMENSIONS, "kinds": tables.FLOW_KINDS, "labels": labels,
               "result": None, "map_at": tables.today().isoformat()}
    refuse_with("statistics.html", **context)
    query = _query(form)
    if query["mode"] == "stocks":
        answer = tables.stocks(g.user, query["dimensions"], query["at"])
        context["map_at"] = answer["at"]
    else:
        answer = tables.flows(g.user, query["kind"], query["dimensions"], query["from"], query["to"])
        context["map_at"] = min(query["to"], tables.today()).isoformat()
    audit.note(object_type="statistics", result_count=len(answer["cells"]),
               details={"dimensions": answer["dimensions"], "format": "console",
                        "suppressed": answer["suppression"]["suppressed_cells"]})
    context["result"] = {"answer": answer, "table": _table(answer), "chart": _chart(answer),
                         "downloads": _downloads(query), "title": _title(query)}
    return render("statistics.html", **context)


@bp.get("/statistics/map.json")
@requires_page(PERMISSION)
def statistics_map():
    """Stocks by host country at ``?at=`` (default today), for the page's map: the user's statistics only."""
    raw = request.args.get("at", "").strip()
    try:
        day = date.fromisoformat(raw) if raw else tables.today()
    except ValueError:
        raise Unprocessable("Not a day.", errors={"at": ["A date, YYYY-MM-DD."]}) from None
    found = choropleth.stocks_by_host_country(g.user, day)
    audit.note(object_type="statistics", result_count=len(found["countries"]),
               details={"dimensions": ["host_country"], "format": "map",
                        "suppressed": found["suppression"]["suppressed_cells"]})
    return jsonify(found)


# ---------------------------------------------------------------------- the form

def _form(args) -> dict:
    form = {name: args.get(name, "").strip()[:40] for name in FIELDS}
    if not form["mode"]:  # the first visit: today's stocks by host country and sex
        form.update(mode="stocks", by1=DEFAULT_DIMENSIONS[0], by2=DEFAULT_DIMENSIONS[1])
    if not form["kind"]:
        form["kind"] = tables.FLOW_KINDS[0]
    today = tables.today()
    if not form["from"]:
        form["from"] = date(today.year, 1, 1).isoformat()
    if not form["to"]:
        form["to"] = today.isoformat()
    return form


def _query(form: dict) -> dict:
    """The form as the service's arguments. :raises Unprocessable: beside each bad field."""
    errors: dict[str, list[str]] = {}
    mode = form["mode"]
    if mode not in ("stocks", "flows"):
        errors["mode"] = ["Choose stocks or flows."]
    query: dict = {"mode": mode}
    allowed = FLOW_DIMENSIONS if mode == "flows" else tables.DIMENSIONS
    chosen: list[str] = []
    for name in DIMENSION_FIELDS:
        value = form[name]
        if not value:
            continue
        if value not in tables.DIMENSIONS:
            errors[name] = ["Choose one of the offered dimensions."]
        elif value not in allowed:
            errors[name] = [f"Flows are not counted by {labels.dimension_name(value).lower()}."]
        elif value in chosen:
            errors[name] = ["This dimension is chosen already."]
        elif mode == "flows" and len(chosen) == tables.MAX_DIMENSIONS - 1:
            errors[name] = ["Flows are by month and at most two more dimensions."]
        else:
            chosen.append(value)
    query["dimensions"] = chosen
    if mode == "stocks":
        query["at"] = _day(form, "at", errors) if form["at"] else tables.today()
    elif mode == "flows":
        if form["kind"] not in tables.FLOW_KINDS:
            errors["kind"] = [f"One of: {', '.join(tables.FLOW_KINDS)}."]
        query["kind"] = form["kind"]
        query["from"], query["to"] = _day(form, "from", errors), _day(form, "to", errors)
        if query["from"] and query["to"] and query["to"] < query["from"]:
            errors["to"] = ["A day on or after the first day."]
    if errors:
        raise Unprocessable("Check the fields marked below.", errors=errors)
    return query


def _day(form: dict, name: str, errors: dict) -> date | None:
    try:
        return date.fromisoformat(form[name])
    except ValueError:
        errors[name] = ["A date, YYYY-MM-DD."]
        return None


def _title(query: dict) -> str:
    by = ", ".join(labels.dimension_name(d).lower() for d in query["dimensions"])
    if query["mode"] == "stocks":
        what = f"Nationals abroad at the end of {query['at'].isoformat()}"
    else:
        what = (f"{query['kind'].capitalize()} from {query['from'].isoformat()} to {query['to'].isoformat()}, "
                "by month")
        by = by and f"and {by}"
    return f"{what} {'by ' if query['mode'] == 'stocks' and by else ''}{by}".strip()


def _downloads(query: dict) -> list[tuple[str, str]]:
    """The same query through the API (the session's cookie is enough for a GET), in each file format."""
    if query["mode"] == "stocks":
        path, params = "/api/v1/statistics/stocks", {"by": ",".join(query["dimensions"]),
                                                     "at": query["at"].isoformat()}
    else:
        path, params = "/api/v1/statistics/flows", {"kind": query["kind"],
                                                    "by": ",".join(["month", *query["dimensions"]]),
                                                    "from": query["from"].isoformat(), "to": query["to"].isoformat()}
    return [(name, f"{path}?{urlencode({**params, 'format': fmt})}")
            for name, fmt in (("CSV", "csv"), ("HXL", "hxl"), ("SDMX-CSV", "sdmx-csv"))]


# ---------------------------------------------------------------------- the table and the chart

def _indexed(answer: dict):
    dims = answer["dimensions"]
    found = {tuple(c[d] for d in dims): c for c in answer["cells"]}
    found.update({tuple(c[d] for d in dims): c for c in answer["totals"]})
    return lambda key: found.get(tuple(key), ZERO)  # left out: nobody (a zero, published)


def _categories(answer: dict, position: int) -> list:
    dimension = answer["dimensions"][position]
    values = {c[dimension] for c in answer["cells"]}
    return sorted(values, key=lambda v: labels.sort_key(dimension, v))


def _table(answer: dict) -> dict:
    """The answer laid out for reading: ``shape`` total (no dimension), list (one), cross (the last dimension
    across, with row and column totals; with three, rows of the first two and their other totals as a list)."""
    dims = answer["dimensions"]
    get = _indexed(answer)
    rank = len(dims)

    def name(position: int, value) -> str:
        return labels.label(dims[position], value)

    if rank == 0:
        return {"shape": "total", "grand": get(())}
    if rank == 1:
        rows = [([name(0, a)], [get((a,))]) for a in _categories(answer, 0)]
        return {"shape": "list", "rows": rows[:ROW_LIMIT], "row_count": len(rows), "columns": [],
                "heads": [labels.dimension_name(dims[0])], "footer": [get((None,))]}
    last = _categories(answer, rank - 1)
    columns = [name(rank - 1, c) for c in last]
    if rank == 2:
        keys = [(a,) for a in _categories(answer, 0)]
    else:
        present = {(c[dims[0]], c[dims[1]]) for c in answer["cells"]}
        keys = [k for k in itertools.product(_categories(answer, 0), _categories(answer, 1)) if k in present]
    rows = [([name(i, v) for i, v in enumerate(k)], [get((*k, c)) for c in last] + [get((*k, None))]) for k in keys]
    lead = (None,) * (rank - 1)
    table = {"shape": "cross", "rows": rows[:ROW_LIMIT], "row_count": len(rows), "columns": columns,
             "heads": [labels.dimension_name(d) for d in dims[:-1]], "across": labels.dimension_name(dims[-1]),
             "footer": [get((*lead, c)) for c in last] + [get((*lead, None))], "margins": []}
    if rank == 3:  # the totals over one of the two row dimensions, as a list
        others = [c for c in answer["totals"] if (c[dims[0]] is None) != (c[dims[1]] is None)]
        others.sort(key=lambda c: tuple(labels.sort_key(d, c[d]) for d in dims))
        table["margins"] = [([name(i, c[d]) for i, d in enumerate(dims)], c) for c in others][:ROW_LIMIT]
    return table


def _chart(answer: dict) -> dict | None:
    """Bars of the first dimension's totals (published ones; suppressed ones named as left out)."""
    dims = answer["dimensions"]
    if not dims:
        return None
    first = dims[0]
    rest = len(dims) - 1
    if rest == 0:
        totals = answer["cells"]
    else:
        totals = [c for c in answer["totals"] if c[first] is not None and all(c[d] is None for d in dims[1:])]
    shown = [c for c in totals if not c["suppressed"]]
    hidden = [labels.label(first, c[first]) for c in sorted(totals, key=lambda c: labels.sort_key(first, c[first]))
              if c["suppressed"]]
    if first in labels.ORDERED_BY_CODE:
        shown.sort(key=lambda c: labels.sort_key(first, c[first]))
    else:
        shown.sort(key=lambda c: (-c["count"], labels.sort_key(first, c[first])))
    beyond = max(0, len(shown) - BAR_LIMIT)
    shown = shown[:BAR_LIMIT]
    top = max((c["count"] for c in shown), default=0) or 1
    row = 26
    bars = []
    for i, cell in enumerate(shown):
        text = labels.label(first, cell[first])
        share = 50.0 * cell["count"] / top
        bars.append({"label": text if len(text) <= 30 else text[:29] + "…", "full": text, "count": cell["count"],
                     "y": 6 + i * row, "width": f"{share:.2f}%", "end": f"{38 + share:.2f}%"})
    return {"dimension": labels.dimension_name(first), "bars": bars, "height": 12 + len(bars) * row,
            "suppressed": hidden, "beyond": beyond}
