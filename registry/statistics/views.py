"""``/api/v1/statistics``: stocks and flows for the migration profile (SPEC §11), small cells suppressed."""
from __future__ import annotations

from flask import Response, g

from registry.audit import services as audit
from registry.auth.access import requires
from registry.jobs import views as jobs_views
from registry.jobs.schemas import JobAccepted
from registry.statistics import formats, profile_files, schemas, tables
from registry.web.openapi import ApiBlueprint, errors, file_responses

bp = ApiBlueprint("statistics", __name__, url_prefix="/statistics",
                  description="Migration-profile statistics (SPEC §11)")


def _answer(answer: dict, fmt: str, name: str):
    audit.note(object_type="statistics", result_count=len(answer["cells"]),
               details={"dimensions": answer["dimensions"], "format": fmt,
                        "suppressed": answer["suppression"]["suppressed_cells"]})
    if fmt == "json":
        return answer
    return Response(formats.render(answer, fmt), mimetype=formats.MEDIA_TYPES[fmt].split(";")[0],
                    headers={"Content-Disposition": f'attachment; filename="{name}.{"csv"}"'})


@bp.get("/stocks")
@requires("statistics:read")
@bp.arguments(schemas.StocksQuery, location="query")
@bp.response(200, schemas.StatisticsOut)
@file_responses("text/csv", "application/vnd.sdmx.data+csv")
@errors(422)
def stocks(args):
    """Nationals abroad at the end of a day, by up to three dimensions.

    From the deployment and status history: nationals returned before that day are not abroad on it. Cells
    and totals of fewer than ``REGISTRY_STATS_MIN_CELL`` people are suppressed, with the cells that would give
    them away; ``suppression`` names the method. Embassy officers get their jurisdiction's statistics.
    """
    dimensions = tables.parse_dimensions(args["by"])
    day = args.get("at") or tables.today()
    return _answer(tables.stocks(g.user, dimensions, day), args["format"], f"stocks-{day.isoformat()}")


@bp.get("/flows")
@requires("statistics:read")
@bp.arguments(schemas.FlowsQuery, location="query")
@bp.response(200, schemas.StatisticsOut)
@file_responses("text/csv", "application/vnd.sdmx.data+csv")
@errors(422)
def flows(args):
    """Departures, returns or crisis repatriations by month, and by up to two more dimensions."""
    names = tables.parse_dimensions(args["by"], allowed=("month", *tables.DIMENSIONS), most=3)
    if names[:1] != ["month"]:
        names = ["month", *[n for n in names if n != "month"]]
    others = tables.parse_dimensions(",".join(names[1:]),
                                     allowed=tuple(d for d in tables.DIMENSIONS if d != "status"), most=2)
    return _answer(tables.flows(g.user, args["kind"], others, args["from_"], args["to"]), args["format"],
                   f"{args['kind']}-{args['from_'].isoformat()}-{args['to'].isoformat()}")


@bp.post("/profile")
@requires("statistics:read")
@bp.arguments(schemas.ProfileRequest, example={"year": 2025, "format": "xlsx"})
@bp.response(202, JobAccepted, headers={"Location": {"schema": {"type": "string"}}})
@errors(422)
def profile(args):
    """The migration profile of a year as XLSX or PDF, built by a worker.

    Its standard tables (stocks at the end of the year by destination, sex, age band and occupation;
    departures, returns and crisis repatriations by month) with the same suppression as ``/stocks`` and
    ``/flows``, and charts in the PDF. 202 with a job whose ``result.download_url`` serves the file to the
    caller alone until it expires. Embassy officers get their jurisdiction's profile.
    """
    job = profile_files.request_file(g.user, args["year"], args["format"], args.get("purpose"))
    audit.note(object_type="statistics", object_ids=[job.id], purpose=args.get("purpose"),
               details={"profile": args["year"], "format": args["format"]})
    return jobs_views.accepted(job)
