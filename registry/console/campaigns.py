"""``/console/crises/<id>/messages``: message the exposed (SPEC §9, §10).

A composer: channels (an unconfigured one shown as off), a template per language
with the placeholders offered, the audience as a roster's selection; a dry run shows
the counts, skipped reasons, SMS parts and encodings; Send asks for confirmation,
then the page follows the campaign (``static/campaigns.js`` calls
``POST /api/v1/crises/{id}/messages`` and polls ``GET /api/v1/messages/{id}``, with an
``Idempotency-Key`` per composition: a double click sends once). Below, the crisis's
campaigns with their counts. Inside a crisis: reads are recorded with the purpose
"crisis response: <crisis name>".
"""
from __future__ import annotations

import uuid

from flask import g

from registry.audit import services as audit
from registry.campaigns import services as campaigns
from registry.campaigns import templates as tpl
from registry.console import bp
from registry.console.pages import render, requires_page
from registry.crises import services as crises
from registry.crises.models import CERTAINTIES, WELFARE_STATUSES, ZONES
from registry.nationals.models import VULNERABILITIES

LANGUAGES = (("en", "English"), ("fil", "Filipino"))
DEFAULT_TEMPLATES = {
    "en": "{given_name}, are you safe after the {crisis_name}? Reply 1 SAFE or 2 HELP, or check in: {checkin_link} "
          "Hotline {hotline}",
    "fil": "{given_name}, ligtas ka ba sa {crisis_name}? Sumagot ng 1 LIGTAS o 2 TULONG, o: {checkin_link} "
           "Hotline {hotline}",
}
AUDIENCE = (("zones", "Zone", ZONES), ("certainty", "Certainty", CERTAINTIES),
            ("welfare_status", "Welfare status", WELFARE_STATUSES), ("vulnerability", "Needs", VULNERABILITIES))


@bp.get("/crises/<uuid:crisis_id>/messages")
@requires_page("messages:write")
def campaigns_page(crisis_id: uuid.UUID):
    crisis = crises.get_crisis(crisis_id)
    page = campaigns.list_for_crisis(crisis.id, g.user, limit=20, cursor=None)
    listed = [campaigns.campaign_out(c, g.user) for c in page["items"]]
    audit.note(object_type="campaign", object_ids=[crisis.id, *(c["id"] for c in listed)],
               result_count=page["total"], purpose=f"crisis response: {crisis.name}")
    return render("campaigns.html", crisis=crisis, campaigns=listed, total=page["total"],
                  channels=campaigns.channels_status(), languages=LANGUAGES, templates=DEFAULT_TEMPLATES,
                  placeholders=tpl.PLACEHOLDERS, audience=AUDIENCE, purpose=f"crisis response: {crisis.name}",
                  has_run=crises.latest_run(crisis, succeeded=True) is not None)
