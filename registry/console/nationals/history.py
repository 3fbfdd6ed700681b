"""A national's crises and welfare, for their record page: read from the crises and rosters packages.

Here, above those packages, rather than in ``registry.nationals``: crises and rosters stand on nationals
(they import its services), so nationals may not read them (import-linter: no import cycles). The caller
has already been allowed the national (``nationals.services.get_national``); each section is shown only to
the roles that may read it through the API (exposure lists; roster entries and their welfare).
"""
from __future__ import annotations

import uuid

from sqlalchemy import func, select

from registry.crises import services as crises
from registry.crises.models import Crisis, Exposure, ExposureRun
from registry.extensions import db
from registry.rosters import welfare
from registry.rosters.models import WelfareStatus


def exposures_of(national_id: uuid.UUID) -> list[dict]:
    """Every crisis whose exposure lists have held the national, the latest first: the crisis, its newest
    succeeded run that listed them (version, zone, ring, distance, certainty, when), when they were first
    listed, and whether the crisis's current list still holds them."""
    runs = (select(Exposure.zone, Exposure.ring_km, Exposure.distance_km, Exposure.certainty,
                   ExposureRun.id.label("run_id"), ExposureRun.crisis_id, ExposureRun.version,
                   ExposureRun.created_at.label("listed_at"),
                   func.min(ExposureRun.created_at).over(partition_by=ExposureRun.crisis_id).label("first_listed_at"),
                   func.row_number().over(partition_by=ExposureRun.crisis_id,
                                          order_by=(ExposureRun.created_at.desc(), ExposureRun.id.desc()))
                   .label("newest"))
            .join(ExposureRun, ExposureRun.id == Exposure.run_id)
            .where(Exposure.national_id == national_id, ExposureRun.status == "succeeded")).subquery()
    rows = db.session.execute(select(Crisis, runs).join(runs, runs.c.crisis_id == Crisis.id)
                              .where(runs.c.newest == 1).order_by(runs.c.listed_at.desc())).all()
    found = []
    for row in rows:
        crisis = row[0]
        current = crises.latest_run(crisis, succeeded=True)
        found.append({"crisis": crisis, "version": row.version, "zone": row.zone, "ring_km": row.ring_km,
                      "distance_km": row.distance_km, "certainty": row.certainty, "listed_at": row.listed_at,
                      "first_listed_at": row.first_listed_at,
                      "listed_now": current is not None and current.id == row.run_id})
    return found


def welfare_of(national_id: uuid.UUID) -> list[dict]:
    """The national's welfare in every crisis that recorded one, the latest first: the status now, contact
    attempts, and its history (``rosters.welfare.history``), newest first."""
    rows = db.session.execute(select(WelfareStatus, Crisis).join(Crisis, Crisis.id == WelfareStatus.crisis_id)
                              .where(WelfareStatus.national_id == national_id)
                              .order_by(WelfareStatus.updated_at.desc())).all()
    return [{"crisis": crisis, "status": status,
             "history": list(reversed(welfare.history(crisis.id, national_id)))} for status, crisis in rows]
