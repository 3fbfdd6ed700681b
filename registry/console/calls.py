"""``/console/crises/<id>/calls``: the hotline's call list (SPEC §9).

One person at a time: the operator claims the next person of the crisis's list
(``registry.crises.calls``: never two operators on one person; the unreached come
back after ``REGISTRY_CALL_RETRY_MINUTES``), sees their phones, household, next of
kin, city, zone, needs and welfare history, and records a contact attempt and a
welfare status in a few keystrokes (number keys pick the outcome, letters the
status, Enter saves and claims the next: ``static/calls.js``; without
JavaScript the same form posts, and access keys pick the choices). Recording
goes through ``registry.crises.welfare`` (source ``hotline``), as
``PATCH /api/v1/crises/{id}/welfare/{national_id}`` does.

The page is inside a crisis: its reads and writes are recorded with the purpose
"crisis response: <crisis name>" without asking. Everything is seen with the
caller's reach and the fields their role may see (``registry.auth.visibility``).
"""
from __future__ import annotations

import uuid

from flask import current_app, g, redirect, request, url_for
from marshmallow import ValidationError

from registry.audit import services as audit
from registry.auth import visibility
from registry.console import bp
from registry.console.pages import render, requires_page
from registry.crises import calls as call_list
from registry.crises import services as crises
from registry.crises import welfare
from registry.crises.models import Crisis
from registry.crises.schemas import WelfareUpdate
from registry.errors import NotFound, Unprocessable
from registry.nationals import services as nationals
from registry.rosters.models import PRIORITIES

# (value, label, key): the key picks it (a number key, or the access key without JavaScript).
OUTCOMES = (("reached", "Reached", "1"), ("no_answer", "No answer", "2"), ("busy", "Busy", "3"),
            ("voicemail", "Voicemail", "4"), ("wrong_number", "Wrong number", "5"),
            ("unreachable", "Unreachable (switched off, out of service)", "6"), ("other", "Other", "7"))
STATUSES = (("", "Unchanged", "u"), ("contacted", "Contacted", "c"), ("safe", "Safe", "s"),
            ("needs_assistance", "Needs assistance", "a"), ("needs_evacuation", "Needs evacuation", "e"),
            ("evacuated", "Evacuated", "v"), ("repatriated", "Repatriated", "r"), ("missing", "Missing", "m"))
CHANNELS = (("phone", "Phone call"), ("messaging_app", "Messaging app"), ("sms", "SMS"),
            ("via_next_of_kin", "Through the next of kin"), ("via_employer", "Through the employer"),
            ("other", "Other"))
STATUS_LABELS = {value: label for value, label, _ in STATUSES if value} | {"unknown": "Unknown"}
OUTCOME_LABELS = {value: label for value, label, _ in OUTCOMES}
PRIORITY_LABELS = {"medical_or_disability": "medical or disability", "pregnant": "pregnant",
                   "minor_or_elderly": "minor or elderly", "standard": "standard"}
SOURCE_LABELS = {"hotline": "hotline", "sms": "SMS reply", "email": "email reply", "self": "self check-in"}
_NEW_FORM = {"outcome": "", "welfare_status": "", "note": "", "channel": "phone"}


@bp.get("/crises/<uuid:crisis_id>/calls")
@requires_page("welfare:write")
def calls(crisis_id: uuid.UUID):
    crisis = crises.get_crisis(crisis_id)
    return render("calls.html", **_page(crisis, _NEW_FORM))


@bp.post("/crises/<uuid:crisis_id>/calls/next")
@requires_page("welfare:write")
def calls_next(crisis_id: uuid.UUID):
    """Claim the next person (letting go of the current one, who stays on the list)."""
    crisis = crises.get_crisis(crisis_id)
    claim = call_list.claim_next(crisis, g.user)
    audit.note(object_type="crisis", object_ids=[crisis.id, *([claim.national_id] if claim else [])],
               purpose=_purpose(crisis), details={"claimed": claim is not None})
    return redirect(url_for("console.calls", crisis_id=crisis.id), code=303)


@bp.post("/crises/<uuid:crisis_id>/calls/release")
@requires_page("welfare:write")
def calls_release(crisis_id: uuid.UUID):
    """Stop calling: the person goes back to the list for another operator."""
    crisis = crises.get_crisis(crisis_id)
    call_list.release(crisis, g.user)
    audit.note(object_type="crisis", object_ids=[crisis.id], purpose=_purpose(crisis))
    return redirect(url_for("console.calls", crisis_id=crisis.id, stopped=1), code=303)


@bp.post("/crises/<uuid:crisis_id>/calls")
@requires_page("welfare:write")
def calls_record(crisis_id: uuid.UUID):
    """Record the attempt (and the status, the note), then claim the next person."""
    crisis = crises.get_crisis(crisis_id)
    national_id = _national_id(request.form.get("national_id", ""))
    welfare.exposed(crisis.id, national_id, g.user)  # 404: not in this crisis, or not the caller's
    form = {name: request.form.get(name, "").strip() for name in _NEW_FORM}
    try:
        data = _update(form)
    except Unprocessable as invalid:  # the same person again, the problem beside its field
        return render("calls.html", status=422, error=invalid, **_page(crisis, form, national_id=national_id))
    state = welfare.record(crisis.id, national_id, data, g.user, source="hotline")
    claim = call_list.claim_next(crisis, g.user)
    audit.note(object_type="welfare", object_ids=[crisis.id, national_id, *([claim.national_id] if claim else [])],
               purpose=_purpose(crisis), details={"fields": sorted(data), "welfare_status": state.status,
                                                  "contact_outcome": data["contact"]["outcome"]})
    return redirect(url_for("console.calls", crisis_id=crisis.id, saved=state.status), code=303)


def _purpose(crisis: Crisis) -> str:
    return f"crisis response: {crisis.name}"


def _national_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("No such national in this crisis.") from None


def _update(form: dict) -> dict:
    """The form read by the API's own schema: a contact attempt (its outcome is required here), a status
    (empty: unchanged) and a note. :raises Unprocessable:"""
    errors = {}
    if not form["outcome"]:
        errors["outcome"] = ["Choose how the call went (keys 1-7)."]
    body = {"contact": {"channel": form["channel"] or "phone", "outcome": form["outcome"] or "other"}}
    if form["welfare_status"]:
        body["welfare_status"] = form["welfare_status"]
    if form["note"]:
        body["note"] = form["note"]
    try:
        data = WelfareUpdate().load(body)
    except ValidationError as invalid:
        for name, messages in invalid.messages.items():
            if name == "contact" and isinstance(messages, dict):
                for part, text in messages.items():
                    key = "outcome" if part == "outcome" else "channel"
                    errors.setdefault(key, ["Choose one of the options."] if part in ("outcome", "channel")
                                      else text)
            else:
                errors.setdefault(name, ["Choose one of the options."] if name == "welfare_status" else
                                  list(messages) if isinstance(messages, list) else [str(messages)])
        data = None
    if errors:
        raise Unprocessable("The call was not recorded: see the fields marked.", errors=errors)
    return data


def _page(crisis: Crisis, form: dict, *, national_id: uuid.UUID | None = None) -> dict:
    """What the page shows: the counts, and the person the operator holds (or ``national_id``: the person a
    refused form was about); its reads noted with the crisis's purpose."""
    user = g.user
    if national_id is None:
        claim = call_list.held(crisis, user)
        national_id = claim.national_id if claim else None
    else:
        claim = call_list.held(crisis, user)
        claim = claim if claim and claim.national_id == national_id else None
    person = None
    shown: list[uuid.UUID] = []
    if national_id is not None:
        try:
            person = _person(crisis, national_id)
        except NotFound:  # no longer theirs to see (moved away, erased): let go of them
            call_list.release(crisis, user)
            claim = None
    if person:
        shown = [national_id, *(m["id"] for m in person["household"])]
    counts = call_list.counts(crisis, user)
    audit.note(object_type="crisis", object_ids=[crisis.id, *shown], result_count=len(shown),
               purpose=_purpose(crisis))
    return {"crisis": crisis, "counts": counts, "person": person, "claim": claim, "form": form,
            "outcomes": OUTCOMES, "statuses": STATUSES, "channels": CHANNELS, "status_labels": STATUS_LABELS,
            "outcome_labels": OUTCOME_LABELS, "source_labels": SOURCE_LABELS,
            "claim_minutes": current_app.config["REGISTRY_CALL_CLAIM_MINUTES"],
            "retry_minutes": current_app.config["REGISTRY_CALL_RETRY_MINUTES"],
            "saved": request.args.get("saved") if request.args.get("saved") in STATUS_LABELS else None,
            "stopped": bool(request.args.get("stopped")), "has_run": crises.latest_run(crisis, succeeded=True)
            is not None}


def _person(crisis: Crisis, national_id: uuid.UUID) -> dict:
    """The person as the caller may see them: names, phones, next of kin, household (with their phones), city,
    zone, needs (or the priority class, for roles that may not see needs), welfare now and its history.
    :raises NotFound:"""
    user = g.user
    national = welfare.exposed(crisis.id, national_id, user)
    record = nationals.as_seen_by(national, user.role, documents=False)
    row = call_list.exposure_of(crisis, national_id)
    household = [visibility.strip(user.role, {"id": m.id, "family_name": m.family_name,
                                              "given_names": m.given_names, "phones": m.phones or [],
                                              "vulnerabilities": m.vulnerabilities or []})
                 for m in nationals.household_members(national, user)]
    state = welfare.current(crisis.id, national_id)
    priority = PRIORITIES.get(row.priority) if row is not None and row.priority else None
    return {"id": national_id, "record": record, "household": household,
            "deployment": record.get("deployment") or {},
            "zone": row.zone if row is not None else None, "ring_km": row.ring_km if row is not None else None,
            "distance_km": row.distance_km if row is not None else None,
            "priority": PRIORITY_LABELS.get(priority) if priority else None,
            "sees_needs": "vulnerabilities" in record,
            "status": state.status if state else "unknown", "attempts": state.contact_attempts if state else 0,
            "history": list(reversed(welfare.history(crisis.id, national_id)))}
