"""Who a campaign reaches: the crisis's latest exposure run, narrowed by the audience and the creator's reach.

One SQL statement, used twice: a dry run reads it (to count and measure), the
sending job writes it into ``campaign_recipients`` with one ``INSERT … SELECT``
(``ON CONFLICT DO NOTHING``: a rerun adds nothing). One row per national and
channel; a national without a phone (SMS), whose every phone opted out, or
without an email is a ``skipped`` row with the reason, so counts add up.
"""
from __future__ import annotations

import uuid

from sqlalchemy import text

from registry.auth.reach import Reach
from registry.extensions import db

AUDIENCE_KEYS = ("zones", "certainty", "welfare_status", "vulnerability")

# Every phone of the national has opted out (STOP): nothing to send to.
_ALL_OPTED_OUT = ("NOT EXISTS (SELECT 1 FROM unnest(n.phones) AS p(phone) "
                  "WHERE NOT EXISTS (SELECT 1 FROM sms_opt_outs o WHERE o.phone = p.phone))")
_STATE = f"""CASE
  WHEN ch.channel = 'sms' AND cardinality(n.phones) = 0 THEN 'skipped'
  WHEN ch.channel = 'sms' AND {_ALL_OPTED_OUT} THEN 'skipped'
  WHEN ch.channel = 'email' AND coalesce(n.email, '') = '' THEN 'skipped'
  ELSE 'queued' END"""
_REASON = f"""CASE
  WHEN ch.channel = 'sms' AND cardinality(n.phones) = 0 THEN 'no_phone'
  WHEN ch.channel = 'sms' AND {_ALL_OPTED_OUT} THEN 'opted_out'
  WHEN ch.channel = 'email' AND coalesce(n.email, '') = '' THEN 'no_email' END"""
# The national's first language with a template, else the fallback (English, else the first template's).
_LANGUAGE = ("coalesce((SELECT l FROM unnest(n.languages) WITH ORDINALITY AS t(l, i) "
             "WHERE l = ANY(CAST(:languages AS varchar[])) ORDER BY i LIMIT 1), :fallback)")
_FROM = """
FROM exposures e
JOIN nationals n ON n.id = e.national_id AND n.erased_at IS NULL
LEFT JOIN welfare_statuses w ON w.crisis_id = :crisis_id AND w.national_id = e.national_id
CROSS JOIN unnest(CAST(:channels AS varchar[])) AS ch(channel)
WHERE e.run_id = :run_id"""


def _where(audience: dict, reach: Reach) -> tuple[str, dict]:
    clauses, params = [], {}
    if audience.get("zones"):
        clauses.append("e.zone = ANY(CAST(:zones AS varchar[]))")
        params["zones"] = list(audience["zones"])
    if audience.get("certainty"):
        clauses.append("e.certainty = ANY(CAST(:certainty AS varchar[]))")
        params["certainty"] = list(audience["certainty"])
    if audience.get("welfare_status"):
        clauses.append("coalesce(w.status, 'unknown') = ANY(CAST(:welfare_status AS varchar[]))")
        params["welfare_status"] = list(audience["welfare_status"])
    if audience.get("vulnerability"):
        clauses.append("n.vulnerabilities && CAST(:vulnerability AS varchar[])")
        params["vulnerability"] = list(audience["vulnerability"])
    reach_sql, reach_params = reach.sql("n.jurisdiction_country")
    return "".join(f" AND {c}" for c in clauses) + reach_sql, {**params, **reach_params}


def _params(crisis_id, run_id, channels, languages, fallback) -> dict:
    return {"crisis_id": crisis_id, "run_id": run_id, "channels": list(channels), "languages": list(languages),
            "fallback": fallback}


def rows(crisis_id: uuid.UUID, run_id: uuid.UUID, channels, audience: dict, reach: Reach, languages,
         fallback: str) -> list:
    """(channel, state, reason, language, given_names) of each recipient the campaign would have (dry run)."""
    where, params = _where(audience, reach)
    statement = text(f"SELECT ch.channel, {_STATE} AS state, {_REASON} AS reason, {_LANGUAGE} AS language, "
                     f"n.given_names {_FROM}{where}")
    return db.session.execute(statement, {**_params(crisis_id, run_id, channels, languages, fallback),
                                          **params}).all()


def materialise(campaign_id: uuid.UUID, crisis_id: uuid.UUID, run_id: uuid.UUID, channels, audience: dict,
                reach: Reach, languages, fallback: str) -> int:
    """Write the campaign's recipients (one statement; a rerun adds nothing); how many rows it added."""
    where, params = _where(audience, reach)
    statement = text(f"""
INSERT INTO campaign_recipients (campaign_id, national_id, channel, state, error, language)
SELECT :campaign_id, n.id, ch.channel, {_STATE}, {_REASON}, {_LANGUAGE} {_FROM}{where}
ON CONFLICT (campaign_id, national_id, channel) DO NOTHING""")
    return db.session.execute(statement, {**_params(crisis_id, run_id, channels, languages, fallback),
                                          "campaign_id": campaign_id, **params}).rowcount
