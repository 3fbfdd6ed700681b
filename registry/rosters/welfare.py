"""Welfare status through a roster entry: the roster's call list (SPEC §4.3).

Set by coordinators, admins and embassy officers in whose jurisdiction the
national is (others get a 404, as for any record they may not see). The status
belongs to the national in the crisis and is recorded by the one service
``registry.crises.welfare`` (also used by the hotline without a roster); each
update may record a contact attempt.
"""
from __future__ import annotations

import uuid

from registry.crises import welfare
from registry.rosters.entries import get_entry
from registry.rosters.models import Roster


def update(roster: Roster, national_id: uuid.UUID, data: dict, user) -> dict:
    """Change the status and/or log a contact attempt; the entry as it is now. :raises NotFound, Unprocessable:"""
    welfare.check_given(data)
    get_entry(roster, national_id, user)  # 404 outside the roster or the caller's jurisdiction
    welfare.record(roster.crisis_id, national_id, data, user, source="hotline", roster_id=roster.id)
    return get_entry(roster, national_id, user)


def history(crisis_id: uuid.UUID, national_id: uuid.UUID) -> list[dict]:
    """Every change and contact attempt, oldest first (the caller has already been allowed the entry)."""
    return welfare.history(crisis_id, national_id)
