"""Which of a person's fields each role sees (SPEC §6b: only what the role needs), written once.

Used by every answer that carries a person: the national record (JSON),
exposure rows (JSON, CSV, GeoJSON), roster entries and every roster export
format. Field names are the flat ones of those answers (a deployment's
``legal_status`` is ``legal_status``).

Coordinators move people: who, where, how to call them, and the priority
class that orders the rosters (``priority``, ``priority_label``). They do not
need the medical detail behind a priority, dates of birth, national ID
numbers, consent records, legal status or recruiting agencies; embassy
officers (consular case work), desk officers (they register) and admins do.
A role may not filter on a field it may not see: the filter would tell.
"""
from __future__ import annotations

from collections.abc import Iterable

from registry.errors import Forbidden

HIDDEN: dict[str, frozenset[str]] = {
    "coordinator": frozenset({"date_of_birth", "vulnerabilities", "national_id_number", "consent", "legal_status",
                              "recruitment_agency"}),
}


def hidden_from(role: str) -> frozenset[str]:
    return HIDDEN.get(role, frozenset())


def visible(role: str, names: Iterable[str]) -> tuple[str, ...]:
    """``names`` without those ``role`` may not see, in their order."""
    hidden = hidden_from(role)
    return tuple(name for name in names if name not in hidden)


def strip(role: str, record: dict) -> dict:
    """``record`` without the fields ``role`` may not see (top level only)."""
    hidden = hidden_from(role)
    return {key: value for key, value in record.items() if key not in hidden} if hidden else record


def check_filters(role: str, filters: dict[str, str]) -> None:
    """``filters`` maps a filter in use to the field it reads. :raises Forbidden: a filter on a hidden field."""
    refused = {name: ["Your role may not filter by this field."] for name, field in filters.items()
               if field in hidden_from(role)}
    if refused:
        raise Forbidden("Your role may not filter by a field it does not see.", errors=refused)
