"""Roster exports: every national of the roster, placed or not, in seven formats, with the role's columns.

The rows come from one SQL query (``_ROWS_SQL``), filtered to the caller's
jurisdiction explicitly (a worker bypasses row-level security, so the filter
cannot rely on it) and streamed through a server-side cursor; CSV and HXL are
written by PostgreSQL itself (COPY … CSV), the fastest path there is. Small
exports are answered in the request; large ones are built by a worker into a
file encrypted at rest (``EncryptedFile``), downloadable by whoever asked for
it until it expires.
"""
from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import current_app
from psycopg import sql
from sqlalchemy import text

from registry.auth import visibility
from registry.auth.reach import Reach
from registry.crises.models import Crisis
from registry.errors import Unprocessable
from registry.extensions import db
from registry.jobs import files
from registry.jobs import services as jobs
from registry.rosters.services import get_roster, require_built
from registry.rosters.models import Roster

FORMATS = {  # format -> (media type, file extension)
    "csv": ("text/csv; charset=utf-8", "csv"),
    "hxl": ("text/csv; charset=utf-8", "hxl.csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "pdf": ("application/pdf", "pdf"),
    "geojson": ("application/geo+json", "geojson"),
    "kml": ("application/vnd.google-earth.kml+xml", "kml"),
    "pfif": ("application/xml", "pfif.xml"),
}
PAPERS = ("a4", "letter")
LARGE_EXPORT_ROWS = 10_000

# Every column an export can carry; each role gets those it may see (registry/auth/visibility.py: a
# coordinator's file has the priority class, not the dates of birth and vulnerabilities behind it). Passport
# numbers are in no export: manifests identify people by name, id and household.
EXPORT_COLUMNS = ("national_id", "family_name", "given_names", "native_name", "sex", "date_of_birth", "household_id",
                  "priority", "priority_label", "vulnerabilities", "assembly_point", "assembly_point_id", "vehicle",
                  "seat", "phones", "zone", "ring_km", "distance_km", "distance_to_point_km", "lat", "lon",
                  "host_country", "city", "welfare_status", "welfare_note", "unassigned_reason")
# Columns every writer may need for layout (grouping, placemarks) even when not printed.
_LAYOUT = ("assembly_point_kind", "assembly_point_lat", "assembly_point_lon", "welfare_updated_at", "rank")

HXL_TAGS = {
    "national_id": "#meta+id", "family_name": "#contact+name+family", "given_names": "#contact+name+given",
    "native_name": "#contact+name+native", "sex": "#meta+sex", "date_of_birth": "#date+birth",
    "household_id": "#meta+household", "priority": "#indicator+priority", "priority_label": "#meta+priority",
    "assembly_point": "#loc+name+assembly", "assembly_point_id": "#loc+code+assembly", "vehicle": "#meta+vehicle",
    "seat": "#meta+seat", "phones": "#contact+phone", "zone": "#meta+zone", "ring_km": "#indicator+ring_km",
    "distance_km": "#indicator+distance_km", "distance_to_point_km": "#indicator+distance_to_point_km",
    "lat": "#geo+lat", "lon": "#geo+lon", "host_country": "#country+code", "city": "#adm1+name",
    "welfare_status": "#status+welfare", "unassigned_reason": "#status+unassigned",
    "vulnerabilities": "#indicator+vulnerabilities", "welfare_note": "#description+welfare",
}

# Every column a writer can ask for, as SQL. Text that could start a spreadsheet formula is made text
# in the CSV path (``_csv_safe``); the other writers escape for their own format.
_SELECT = {
    "national_id": "e.national_id::text", "family_name": "n.family_name", "given_names": "n.given_names",
    "native_name": "n.native_name", "sex": "n.sex", "date_of_birth": "n.date_of_birth",
    "household_id": "x.household_id::text", "priority": "e.priority", "rank": "e.rank",
    "priority_label": ("(CASE e.priority WHEN 1 THEN 'medical_or_disability' WHEN 2 THEN 'pregnant' "
                       "WHEN 3 THEN 'minor_or_elderly' ELSE 'standard' END)"),
    "assembly_point": "p.name", "assembly_point_id": "e.assembly_point_id::text",
    "assembly_point_kind": "p.kind", "assembly_point_lat": "ST_Y(p.location)",
    "assembly_point_lon": "ST_X(p.location)", "vehicle": "e.vehicle", "seat": "e.seat", "phones": "n.phones",
    "zone": "x.zone", "ring_km": "x.ring_km", "distance_km": "x.distance_km",
    "distance_to_point_km": "e.distance_to_point_km", "lat": "ST_Y(x.location)", "lon": "ST_X(x.location)",
    "host_country": "d.host_country", "city": "d.city", "welfare_status": "coalesce(w.status, 'unknown')",
    "welfare_note": "w.note", "welfare_updated_at": "w.updated_at", "unassigned_reason": "e.unassigned_reason",
    "vulnerabilities": "n.vulnerabilities",
}
_FROM = """
FROM roster_entries e
JOIN nationals n ON n.id = e.national_id AND n.erased_at IS NULL {jurisdiction}
JOIN exposures x ON x.run_id = {run_id} AND x.national_id = e.national_id
LEFT JOIN roster_points p ON p.roster_id = e.roster_id AND p.assembly_point_id = e.assembly_point_id
LEFT JOIN deployments d ON d.national_id = e.national_id AND d.is_current
LEFT JOIN welfare_statuses w ON w.crisis_id = {crisis_id} AND w.national_id = e.national_id
WHERE e.roster_id = {roster_id} {point}"""
# Manifest order: by point (name), vehicle and seat; the unplaced last, in the roster's priority order.
_ORDER = " ORDER BY e.assembly_point_id IS NULL, p.position, e.vehicle, e.seat, e.rank"


def columns_for(role: str) -> tuple[str, ...]:
    return visibility.visible(role, EXPORT_COLUMNS)


def _query(roster: Roster, select_sql: str, reach: Reach, *, point: uuid.UUID | None = None) -> sql.Composed:
    """The export's statement: the caller's ``jurisdiction`` (None: everywhere), one assembly ``point``'s
    people (None: everyone, placed or not)."""
    where = reach.composed("n.jurisdiction_country")
    one_point = sql.SQL("AND e.assembly_point_id = {}").format(sql.Literal(str(point))) if point else sql.SQL("")
    return sql.SQL(select_sql + _FROM + _ORDER).format(
        jurisdiction=where, run_id=sql.Literal(str(roster.run_id)), crisis_id=sql.Literal(str(roster.crisis_id)),
        roster_id=sql.Literal(str(roster.id)), point=one_point)


def check_size(fmt: str, rows: int) -> None:
    """:raises Unprocessable: a PDF too large to build in a worker's memory (fpdf2 holds the whole document)."""
    limit = current_app.config["REGISTRY_PDF_MAX_ROWS"]
    if fmt == "pdf" and rows > limit:
        raise Unprocessable(f"A PDF of {rows:,} rows is too large (at most {limit:,}); export one assembly point "
                            "at a time (assembly_point_id), or use csv or xlsx.",
                            errors={"assembly_point_id": ["Give one to print that point's manifests."]})


def count_rows(roster: Roster, reach: Reach, *, point: uuid.UUID | None = None) -> int:
    """How many rows the export will have, give or take people erased since the roster was built: the
    entries alone (and the nationals only for a jurisdiction), not the export's whole join."""
    statement = sql.SQL("SELECT count(*) FROM roster_entries e {nationals} WHERE e.roster_id = {roster_id} {point}")
    nationals = (sql.SQL("JOIN nationals n ON n.id = e.national_id {}").format(reach.composed("n.jurisdiction_country"))
                 if not reach.is_everywhere else sql.SQL(""))
    one_point = sql.SQL("AND e.assembly_point_id = {}").format(sql.Literal(str(point))) if point else sql.SQL("")
    cursor = _cursor()
    cursor.execute(statement.format(nationals=nationals, roster_id=sql.Literal(str(roster.id)), point=one_point))
    return cursor.fetchone()[0]


def _cursor(name: str | None = None):
    return db.session.connection().connection.driver_connection.cursor(name=name)


def iter_rows(roster: Roster, columns: Iterable[str], reach: Reach, *,
              point: uuid.UUID | None = None) -> Iterator[dict]:
    """The export's rows as dicts, streamed from a server-side cursor in manifest order."""
    names = list(dict.fromkeys([*columns, *_LAYOUT, "assembly_point_id", "vehicle", "seat", "assembly_point",
                                "unassigned_reason"]))
    select_sql = "SELECT " + ", ".join(f"{_SELECT[name]} AS {name}" for name in names)
    cursor = _cursor(f"roster_export_{uuid.uuid4().hex}")
    cursor.itersize = 5000
    cursor.execute(_query(roster, select_sql.replace("{", "{{").replace("}", "}}"), reach, point=point))
    try:
        for values in cursor:
            yield dict(zip(names, values))
    finally:
        cursor.close()


def meta_of(roster: Roster) -> dict:
    crisis = db.session.get(Crisis, roster.crisis_id)
    return {"crisis_name": crisis.name, "crisis_kind": crisis.kind, "crisis_id": str(crisis.id),
            "roster_id": str(roster.id), "roster_number": roster.number, "exposure_version": roster.version,
            "generated_at": datetime.now(timezone.utc), "pfif_domain": current_app.config["REGISTRY_PFIF_DOMAIN"]}


def write(out, roster: Roster, fmt: str, role: str, reach: Reach, *, paper: str = "a4",
          point: uuid.UUID | None = None, progress=None, rows_expected: int | None = None) -> int:
    """Write the export to the binary file-like ``out``; the number of rows. ``progress(rows)`` is told
    how many rows were written so far, now and then."""
    columns = list(columns_for(role))
    # The manifest sort of up to a million rows in memory, and no JIT (it costs more than it saves here).
    db.session.execute(text("SET LOCAL work_mem = '64MB'"))
    db.session.execute(text("SET LOCAL jit = off"))
    if rows_expected is not None and rows_expected > LARGE_EXPORT_ROWS:
        # Right after a roster is built its rows have no statistics yet (the workers' role may not ANALYZE
        # a table it does not own), and the planner takes a large roster for a few rows: a nested loop of
        # index lookups, twice as slow as hashing (bench/roster.py). Large exports hash.
        db.session.execute(text("SET LOCAL enable_nestloop = off"))
    if fmt in ("csv", "hxl"):
        return _write_csv(out, roster, columns, reach, point=point, hxl=fmt == "hxl", progress=progress)
    rows = iter_rows(roster, columns, reach, point=point)
    if progress is not None:
        rows = _counting(rows, progress)
    meta = meta_of(roster)
    if fmt == "geojson":
        return write_geojson(out, meta, columns, rows)
    if fmt == "pdf":
        from registry.rosters.pdf import write_pdf  # fpdf2 and its fonts load only when a PDF is asked for
        return write_pdf(out, meta, columns, rows, paper=paper)
    from registry.rosters import formats
    writer = {"xlsx": formats.write_xlsx, "kml": formats.write_kml, "pfif": formats.write_pfif}[fmt]
    return writer(out, meta, columns, rows)


def _counting(rows: Iterator[dict], progress) -> Iterator[dict]:
    done = 0
    for done, row in enumerate(rows, start=1):
        if done % 5000 == 0:
            progress(done)
        yield row
    progress(done)


# ---------------------------------------------------------------------- CSV and HXL (PostgreSQL writes them)

def _csv_safe(expression: str, name: str) -> str:
    """Free text as CSV text: a leading = + - @ would run as a formula in a spreadsheet."""
    if name in ("family_name", "given_names", "native_name", "city", "assembly_point", "welfare_note"):
        return f"(CASE WHEN left({expression}, 1) IN ('=', '+', '-', '@') THEN '''' || {expression} " \
               f"ELSE {expression} END)"
    if name in ("phones", "vulnerabilities"):
        return f"array_to_string({expression}, ';')"
    return expression


def _write_csv(out, roster: Roster, columns: list[str], reach: Reach, *, point=None, hxl: bool, progress=None) -> int:
    header = io.StringIO()
    writer = csv.writer(header, lineterminator="\n")
    writer.writerow(columns)
    if hxl:
        writer.writerow([HXL_TAGS.get(name, "") for name in columns])
    out.write(header.getvalue().encode())
    select_sql = "SELECT " + ", ".join(f"{_csv_safe(_SELECT[name], name)} AS {name}" for name in columns)
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(
        _query(roster, select_sql.replace("{", "{{").replace("}", "}}"), reach, point=point))
    cursor = _cursor()
    seen = 0
    with cursor.copy(statement) as copy:
        for block in copy:
            out.write(block)
            if progress is not None:
                seen += bytes(block).count(b"\n")  # about the rows so far (a note may hold a line break)
                progress(seen)
    return cursor.rowcount


# ---------------------------------------------------------------------- GeoJSON (RFC 7946)

def write_geojson(out, meta: dict, columns: list[str], rows: Iterable[dict]) -> int:
    """A FeatureCollection: one Point per national (null geometry when the position is unknown), then one
    per assembly point with its counts; [lon, lat] as RFC 7946 says, streamed."""
    out.write(b'{"type":"FeatureCollection","name":' + _json({"crisis": meta["crisis_name"],
                                                               "roster": meta["roster_number"]}) +
              b',"features":[')
    points: dict[str, dict] = {}
    count = 0
    for row in rows:
        point_id = row.get("assembly_point_id")
        if point_id and point_id not in points:
            points[point_id] = {"name": row["assembly_point"], "kind": row["assembly_point_kind"],
                                "lon": row["assembly_point_lon"], "lat": row["assembly_point_lat"], "assigned": 0,
                                "vehicles": set()}
        if point_id:
            points[point_id]["assigned"] += 1
            points[point_id]["vehicles"].add(row["vehicle"])
        properties = {"feature_type": "national", **{name: _plain(row.get(name)) for name in columns}}
        geometry = ({"type": "Point", "coordinates": [row["lon"], row["lat"]]}
                    if row.get("lon") is not None else None)
        out.write((b"," if count else b"") + _json({"type": "Feature", "geometry": geometry,
                                                     "properties": properties}))
        count += 1
    for number, (point_id, point) in enumerate(points.items()):
        out.write((b"," if count or number else b"") + _json({
            "type": "Feature", "geometry": {"type": "Point", "coordinates": [point["lon"], point["lat"]]},
            "properties": {"feature_type": "assembly_point", "assembly_point_id": point_id, "name": point["name"],
                           "kind": point["kind"], "assigned": point["assigned"],
                           "vehicles": len(point["vehicles"])}}))
    out.write(b"]}")
    return count


def _plain(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def _json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# ---------------------------------------------------------------------- files built by a worker

def build_file(job) -> dict:
    """The worker's part of a large export: write the encrypted file; the job's result names it."""
    params = job.params
    roster = get_roster(uuid.UUID(params["roster_id"]))
    total = max(int(params.get("rows") or 0), 1)
    last_report = [0.0]

    def progress(done: int) -> None:  # at most once a second: each report is a small transaction
        if time.monotonic() - last_report[0] >= 1.0:
            last_report[0] = time.monotonic()
            jobs.set_progress(job.id, min(0.99, done / total))

    with files.writing(job.id) as out:  # a re-delivered job starts over, in a file of its own
        rows = write(out, roster, params["format"], params["role"], Reach.from_params(params.get("jurisdiction")),
                     paper=params.get("paper", "a4"), progress=progress, rows_expected=params.get("rows"),
                     point=uuid.UUID(params["assembly_point_id"]) if params.get("assembly_point_id") else None)
    expires = datetime.now(timezone.utc) + timedelta(seconds=current_app.config["REGISTRY_EXPORT_TTL_SECONDS"])
    result = {"download_url": f"/api/v1/jobs/{job.id}/download", "format": params["format"], "rows": rows,
              "bytes": out.tell(), "filename": filename(roster, params["format"]), "expires_at": expires.isoformat(),
              "media_type": FORMATS[params["format"]][0]}
    jobs.finish(job.id, result)
    return result


def filename(roster: Roster, fmt: str) -> str:
    return f"roster-{roster.number}-{roster.id}.{FORMATS[fmt][1]}"


EXPORT_TASK = "rosters.export"


def request_file(roster: Roster, args: dict, user, rows: int):
    """A queued job that builds the export into a file, for ``user`` alone to download: the worker acts with
    the caller's reach and role, stored with the job."""
    return jobs.enqueue("roster_export", EXPORT_TASK, created_by=user.id, params={
        "roster_id": str(roster.id), "format": args["format"], "paper": args["paper"], "purpose": args["purpose"],
        "role": user.role, "jurisdiction": Reach.of(user).to_params(), "rows": rows,
        "assembly_point_id": str(args["assembly_point_id"]) if args.get("assembly_point_id") else None})


@dataclass
class Export:
    """What an export request made: the file itself (small) or the job that builds it (large); and what its
    audit event says (``rows``, ``details``)."""

    rows: int
    details: dict
    job: object | None = None
    content: bytes | None = None
    media_type: str = ""
    filename: str = ""


def export(roster: Roster, args: dict, user) -> Export:
    """The export of ``args`` (format, paper, assembly_point_id) as ``user`` may have it: written now up to
    REGISTRY_EXPORT_INLINE_ROWS rows, else requested from a worker (the API and the console alike).
    :raises Unprocessable: the roster is not built, or the file would be too large for its format."""
    require_built(roster)
    reach = Reach.of(user)
    point = args.get("assembly_point_id")
    rows = count_rows(roster, reach, point=point)
    check_size(args["format"], rows)
    details = {"format": args["format"], "columns": list(columns_for(user.role)),
               "assembly_point_id": str(point) if point else None}
    if rows > current_app.config["REGISTRY_EXPORT_INLINE_ROWS"]:
        return Export(rows, {**details, "delivery": "job"}, job=request_file(roster, args, user, rows))
    out = io.BytesIO()
    written = write(out, roster, args["format"], user.role, reach, paper=args["paper"], point=point,
                    rows_expected=rows)
    return Export(written, {**details, "delivery": "inline"}, content=out.getvalue(),
                  media_type=FORMATS[args["format"]][0], filename=filename(roster, args["format"]))
