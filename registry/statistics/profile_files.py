"""The migration profile's files (SPEC §11): written as XLSX or PDF, on the command line (``registry profile``,
the service's reach: every country) or by a worker for ``POST /statistics/profile`` (the caller's reach, saved
with the job), into the encrypted job file store for the caller alone to download."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import current_app

from registry.auth.reach import Reach
from registry.errors import Unprocessable
from registry.jobs import files
from registry.jobs import services as jobs
from registry.statistics import profile_pdf, profile_xlsx, tables
from registry.statistics.profile import Profile, build, check_year

FORMATS = {"xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
           "pdf": ("application/pdf", "pdf")}
TASK = "statistics.profile"


def check_format(fmt: str) -> None:
    """:raises Unprocessable: naming ``format``."""
    if fmt not in FORMATS:
        raise Unprocessable("Unknown format.", errors={"format": [f"One of: {', '.join(FORMATS)}."]})


def write(out, profile: Profile, fmt: str) -> None:
    """``profile`` as ``fmt`` (xlsx or pdf) into the binary file ``out``."""
    check_format(fmt)
    if fmt == "xlsx":
        profile_xlsx.write(out, profile)
    else:
        profile_pdf.write(out, profile)


def filename(profile: Profile, fmt: str) -> str:
    where = "" if profile.reach.is_everywhere else "-" + "-".join(profile.reach.countries or ("none",))
    return f"migration-profile-{profile.year}{where}.{FORMATS[fmt][1]}"


def request_file(user, year: int, fmt: str, purpose: str | None = None):
    """A queued job building ``user``'s profile file: the worker counts with the caller's statistics reach, saved
    with the job (an embassy officer's profile is their jurisdiction's). :raises Unprocessable:"""
    check_year(year)
    check_format(fmt)
    return jobs.enqueue("statistics_profile", TASK, created_by=user.id, params={
        "year": year, "format": fmt, "purpose": purpose, "jurisdiction": tables.reach_of(user).to_params()})


def build_file(job) -> dict:
    """The worker's part: the file, encrypted at rest, for the job's creator to download."""
    params = job.params
    profile = build(Reach.from_params(params.get("jurisdiction")), int(params["year"]))
    jobs.set_progress(job.id, 0.7)  # counting is most of the time (bench/stocks.py --profile)
    with files.writing(job.id) as out:  # a re-delivered job starts over, in a file of its own
        write(out, profile, params["format"])
    expires = datetime.now(timezone.utc) + timedelta(seconds=current_app.config["REGISTRY_EXPORT_TTL_SECONDS"])
    result = {"download_url": f"/api/v1/jobs/{job.id}/download", "format": params["format"], "year": profile.year,
              "rows": len(profile.tables), "tables": [t.key for t in profile.tables], "bytes": out.tell(),
              "filename": filename(profile, params["format"]), "expires_at": expires.isoformat(),
              "media_type": FORMATS[params["format"]][0]}
    jobs.finish(job.id, result)
    return result
