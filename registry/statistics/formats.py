"""A statistics answer as CSV, HXL (CSV with a hashtag row) or SDMX-CSV (SPEC §11).

Cells first, then totals; a dimension a total sums away is written ``total``
(``_T`` in SDMX, its code for totals). A suppressed count is empty, and says
so: a ``suppressed`` column (CSV), ``#meta+suppressed`` (HXL), SDMX-CSV 2.0's ``OBS_STATUS``
``O`` (missing value) with ``CONF_STATUS`` ``C`` (primary) or ``D``
(secondary) in SDMX-CSV.
"""
from __future__ import annotations

import csv
import io

HXL_TAGS = {"host_country": "#country+code", "region": "#region+code", "sex": "#indicator+sex",
            "age_band": "#indicator+age", "occupation": "#indicator+occupation+code+isco08_major",
            "occupation_submajor": "#indicator+occupation+code+isco08_submajor", "sector": "#sector",
            "legal_status": "#indicator+legal_status", "status": "#status", "month": "#date+month"}
MEDIA_TYPES = {"csv": "text/csv", "hxl": "text/csv", "sdmx-csv": "application/vnd.sdmx.data+csv; version=2.0.0"}


def render(answer: dict, fmt: str) -> str:
    rows = _rows(answer)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    dims = answer["dimensions"]
    if fmt == "sdmx-csv":
        flow = "SAGIP:MIGRANT_FLOWS(1.0)" if "month" in dims else "SAGIP:MIGRANT_STOCKS(1.0)"
        others = [d for d in dims if d != "month"]
        writer.writerow(["STRUCTURE", "STRUCTURE_ID", "ACTION", *(d.upper() for d in others), "TIME_PERIOD",
                         "OBS_VALUE", "OBS_STATUS", "CONF_STATUS"])
        for cell, is_total in rows:
            period = cell.get("month") or answer.get("at")
            if "month" in dims and cell.get("month") is None:
                period = f"{answer['from']}/{answer['to']}"
            hidden = cell["suppressed"]
            writer.writerow(["dataflow", flow, "I", *(("_T" if cell.get(d) is None else cell[d]) for d in others), period,
                             "" if hidden else cell["count"], "O" if hidden else "A",
                             ("C" if cell.get("reason") == "primary" else "D") if hidden else "F"])
        return out.getvalue()
    header = [*dims, "count", "suppressed"]
    writer.writerow(header)
    if fmt == "hxl":
        writer.writerow([*(HXL_TAGS.get(d, "#indicator+" + d) for d in dims), "#population+num",
                         "#meta+suppressed"])
    for cell, _ in rows:
        writer.writerow([*(("total" if cell.get(d) is None else cell[d]) for d in dims),
                         "" if cell["suppressed"] else cell["count"], "yes" if cell["suppressed"] else "no"])
    return out.getvalue()


def _rows(answer: dict):
    for cell in answer["cells"]:
        yield cell, False
    for cell in answer["totals"]:
        yield cell, True
