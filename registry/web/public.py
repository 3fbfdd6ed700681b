"""Doors for callers who are not signed-in users: the SMS gateway's hook and the self check-in pages (SPEC §10).

``registry.boundary`` wraps every view in the one door; a view marked here goes
through the same door (one commit with its audit event, or a rollback with its
refusal recorded) but comes in its own way: ``enter(view)`` checks what stands
for a sign-in there (the hook's shared secret, a check-in link's token) and
sets ``g.user`` (``None``: nobody signed in) and the scope, and answers whether
the call is recorded in the audit trail; ``refuse(error)`` answers a refusal
(problem+json by default, an HTML page for the check-in pages).
"""
from __future__ import annotations


def door(enter, refuse=None):
    """Mark ``view`` as entered by ``enter`` instead of a user's token or session (see the module)."""

    def mark(view):
        view.public_enter, view.public_refuse = enter, refuse
        return view

    return mark
