"""``/console/``: what the role does next: open crises with their counts, its running and recent jobs."""
from __future__ import annotations

from flask import g

from registry.console import bp
from registry.console.pages import may, render
from registry.crises import services as crises
from registry.jobs import services as jobs


@bp.get("/")
def home():
    open_crises, show_crises = [], may("crises:read")
    if show_crises:
        for crisis in crises.list_crises(status="active", limit=20)["items"]:
            open_crises.append((crisis, crises.visible_counts(crisis, g.user)))
    return render("home.html", show_crises=show_crises, open_crises=open_crises, jobs=jobs.recent_jobs(g.user))
