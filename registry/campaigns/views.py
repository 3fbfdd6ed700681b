"""``/api/v1/crises/{id}/messages`` and ``/api/v1/messages``: message campaigns (SPEC §10); and Kannel's delivery
reports (``/api/v1/hooks/sms/dlr/…``, a door of its own: ``registry.web.public``)."""
from __future__ import annotations

import uuid

from flask import Blueprint, Response, g, jsonify, request

from registry import idempotency
from registry.audit import services as audit
from registry.auth import scope
from registry.auth.access import limited, requires
from registry.campaigns import schemas, sending, services
from registry.errors import BadRequest, NotFound
from registry.web.openapi import ApiBlueprint, errors
from registry.web.public import door

crisis_messages_bp = ApiBlueprint("crisis_messages", __name__, url_prefix="/crises",
                                  description="Message campaigns of a crisis (SPEC §10)")
messages_bp = ApiBlueprint("messages", __name__, url_prefix="/messages",
                           description="Message campaigns: status, counts, recipients, cancel (SPEC §10)")
dlr_bp = Blueprint("sms_dlr", __name__, url_prefix="/api/v1/hooks/sms/dlr")

EXAMPLE = {"channels": ["sms", "email"],
           "template": {"en": "{given_name}, are you safe after the {crisis_name}? Reply 1 SAFE, 2 HELP, or check "
                              "in: {checkin_link} Hotline {hotline}",
                        "fil": "{given_name}, ligtas ka ba sa {crisis_name}? Sumagot ng 1 LIGTAS, 2 TULONG, o: "
                               "{checkin_link} Hotline {hotline}"},
           "audience": {"zones": ["inside"], "certainty": [], "welfare_status": ["unknown"], "vulnerability": []},
           "dry_run": True}


@crisis_messages_bp.post("/<uuid:crisis_id>/messages")
@requires("messages:write")
@crisis_messages_bp.arguments(schemas.CampaignCreate, example=EXAMPLE)
@crisis_messages_bp.response(202, schemas.CampaignAccepted, headers={"Location": {"schema": {"type": "string"}}})
@crisis_messages_bp.alt_response(200, schema=schemas.DryRunOut, description="a dry run: what it would send",
                                 success=True)
@errors(404, 409)
def create_campaign(data, crisis_id: uuid.UUID):
    """Message the crisis's exposed people by SMS and/or email.

    The audience is the latest exposure run narrowed by ``zones``, ``certainty``, ``welfare_status`` and
    ``vulnerability`` (empty: no restriction); an embassy officer's, their jurisdiction's people. Templates
    (one, or one per language, chosen by the national's languages, else English, else the first) may use
    ``{given_name}``, ``{crisis_name}``, ``{checkin_link}`` and ``{hotline}`` only. ``dry_run``: 200 with the
    counts per channel, skipped reasons and SMS parts by encoding, nothing stored. Otherwise 202 with the
    campaign and its job. A closed crisis is 409; a channel whose gateway is not configured, 422.
    ``Idempotency-Key`` is honoured: a repeated request answers with the campaign it started.
    """
    crisis = services.lock_crisis(crisis_id)
    resolved = services.check_request(crisis, data)
    if data["dry_run"]:
        answer = services.dry_run(crisis, resolved, g.user)
        audit.note(object_type="campaign", object_ids=[crisis_id], result_count=answer["recipients"],
                   details={"dry_run": True, "channels": resolved["channels"]})
        return jsonify(schemas.DryRunOut().dump(answer))  # a Response: the 202 schema does not dump it
    earlier = idempotency.earlier_answer(g.user.id)
    if earlier:
        campaign = services.get_campaign(uuid.UUID(earlier[1]["id"]), g.user)
        audit.note(object_type="campaign", object_ids=[campaign.id, crisis_id], details={"idempotent_replay": True})
        return _accepted(campaign)
    campaign = services.create(crisis, resolved, g.user)
    audit.note(object_type="campaign", object_ids=[campaign.id, crisis_id],
               details={"channels": campaign.channels, "languages": sorted(campaign.templates),
                        "audience": campaign.audience})
    idempotency.remember_answer(g.user.id, 202, {"id": str(campaign.id)})
    return _accepted(campaign)


def _accepted(campaign):
    return ({"id": campaign.id, "job_id": campaign.job_id, "status": campaign.status}, 202,
            {"Location": f"/api/v1/messages/{campaign.id}"})


@crisis_messages_bp.get("/<uuid:crisis_id>/messages")
@requires("messages:read")
@crisis_messages_bp.arguments(schemas.CampaignListQuery, location="query")
@crisis_messages_bp.response(200, schemas.CampaignPage)
@errors(404)
def list_campaigns(args, crisis_id: uuid.UUID):
    """The crisis's campaigns, newest first, with their counts (an embassy officer's: their people)."""
    page = services.list_for_crisis(crisis_id, g.user, limit=args["limit"], cursor=args["cursor"])
    audit.note(object_type="campaign", object_ids=[crisis_id, *(c.id for c in page["items"])],
               result_count=page["total"])
    page["items"] = [services.campaign_out(c, g.user) for c in page["items"]]
    return page


@messages_bp.get("/<uuid:campaign_id>")
@requires("messages:read")
@messages_bp.response(200, schemas.CampaignOut)
@errors(404)
def get_campaign(campaign_id: uuid.UUID):
    """A campaign's status and counts: recipients by state (queued, sending, submitting, sent, delivered,
    failed, skipped, cancelled), ``replied``, ``possible_duplicates``, reasons, per channel."""
    audit.note(object_type="campaign", object_ids=[campaign_id])
    return services.campaign_out(services.get_campaign(campaign_id, g.user), g.user)


@messages_bp.get("/<uuid:campaign_id>/recipients")
@requires("messages:read")
@limited("bulk")
@messages_bp.arguments(schemas.RecipientQuery, location="query")
@messages_bp.response(200, schemas.RecipientPage)
@errors(404)
def list_recipients(args, campaign_id: uuid.UUID):
    """The campaign's people, one row per national: each channel's state, reason, attempts, the position of the
    phone tried (its number masked). Filter ``state``."""
    audit.note(object_type="campaign", object_ids=[campaign_id])
    campaign = services.get_campaign(campaign_id, g.user)
    page = services.recipients_page(campaign, g.user, limit=args["limit"], cursor=args["cursor"],
                                    state=args.get("state"))
    audit.note(object_ids=[campaign_id, *(item["national_id"] for item in page["items"])],
               result_count=page["total"])
    return page


@messages_bp.post("/<uuid:campaign_id>/cancel")
@requires("messages:write")
@messages_bp.response(200, schemas.CampaignOut)
@errors(404)
def cancel_campaign(campaign_id: uuid.UUID):
    """Cancel: queued recipients become cancelled; messages already handed to a gateway finish. A finished
    campaign is answered as it is."""
    audit.note(object_type="campaign", object_ids=[campaign_id])
    campaign = services.cancel(services.get_campaign(campaign_id, g.user), g.user)
    return services.campaign_out(campaign, g.user)


# ---------------------------------------------------------------------- Kannel's delivery reports


def _enter_dlr(view) -> bool:
    """The address itself is the credential: the recipient id and its MAC (checked in constant time)."""
    g.user = None
    args = request.view_args or {}
    if not sending.dlr_mac_valid(args.get("recipient_id", 0), args.get("mac", "")):
        raise NotFound("No such delivery report address.")
    scope.use_everything()
    return False  # one a message: counted in the recipients' rows, not a trail event each


@dlr_bp.get("/<int:recipient_id>/<string(length=22):mac>")
@door(_enter_dlr)
def delivery_report(recipient_id: int, mac: str):
    """Kannel's ``dlr-url``: ``type`` 1 delivered, 2 failed, 16 rejected by the SMSC (others are noted by
    nothing). An empty text/plain answer."""
    try:
        report_type = int(request.args.get("type", ""))
    except ValueError:
        raise BadRequest("type must be Kannel's delivery report type (%d).", errors={"type": ["Not a number."]}) \
            from None
    sending.delivery_report(recipient_id, report_type)
    return Response("", status=200, mimetype="text/plain")
