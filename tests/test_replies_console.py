"""``/console/inbox`` through the Flask client: what needs reading, newest first, with the person matched;
marking handled and assigning through the page's forms; roles and jurisdiction as the API's."""
from __future__ import annotations

import lxml.html

from tests.console_helpers import csrf_of, make_console_user, sign_in
from tests.test_replies import (FAMILY, MARIA, UNKNOWN, coordinator, replies, scene, secret,  # noqa: F401
                                send, welfare_of)


def signed_in(app, db, role, jurisdiction=()):
    client = app.test_client()
    user, username = make_console_user(db, role, jurisdiction)
    assert sign_in(client, username).status_code in (302, 303)
    return client


def test_the_inbox_shows_what_needs_reading_and_assigns_a_shared_number(app, client, db, secret, coordinator,
                                                                         scene):
    send(client, secret, MARIA, "SAFE")  # applied without a note: nothing to read
    send(client, secret, FAMILY, "LIGTAS kami")
    send(client, secret, UNKNOWN, "Sino ito")
    console = signed_in(app, db, "coordinator")
    page = console.get("/console/inbox")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    tree = lxml.html.fromstring(html)
    texts = [t.text_content() for t in tree.xpath("//blockquote[@class='text']")]
    assert texts == ["Sino ito", "LIGTAS kami"]  # newest first; the applied one is handled
    assert "Reyes, Pedro" in html and "Reyes, Rosa" in html and "nobody has this number" in html
    assert any(a.get("href") == f"/console/nationals/{scene['people']['father']}" for a in tree.xpath("//a"))
    assert 'href="/console/inbox"' in html  # in the menu
    shared = next(r for r in replies(db) if r["phone"] == FAMILY)
    response = console.post(f"/console/inbox/{shared['id']}/assign", data={
        "csrf_token": csrf_of(html), "national_id": scene["people"]["mother"], "crisis_id": scene["crisis"],
        "welfare_status": ""})
    assert response.status_code == 303
    assert welfare_of(client, coordinator, scene, "mother")["welfare_status"] == "safe"
    after = console.get(response.headers["Location"]).get_data(as_text=True)
    assert "Assigned" in after and "LIGTAS kami" not in after
    # A malformed ID is shown beside the reply, nothing recorded.
    unknown = next(r for r in replies(db) if r["phone"] == UNKNOWN)
    refused = console.post(f"/console/inbox/{unknown['id']}/assign", data={
        "csrf_token": csrf_of(after), "national_id": "not-an-id", "crisis_id": scene["crisis"]})
    assert refused.status_code == 422
    assert "Not a record" in refused.get_data(as_text=True)
    done = console.post(f"/console/inbox/{unknown['id']}/handled", data={"csrf_token": csrf_of(after)})
    assert done.status_code == 303
    assert "Nothing to read" in console.get("/console/inbox").get_data(as_text=True)
    assert "Sino ito" in console.get("/console/inbox?show=all").get_data(as_text=True)


def test_embassy_officers_see_their_peoples_replies_and_others_may_not_open_it(app, client, db, secret, scene):
    send(client, secret, FAMILY, "We are ok")
    send(client, secret, UNKNOWN, "Who is this")
    dubai = signed_in(app, db, "embassy", ["AE"])
    html = dubai.get("/console/inbox").get_data(as_text=True)
    assert "We are ok" in html and "Who is this" not in html
    oman = signed_in(app, db, "embassy", ["OM"])
    assert "We are ok" not in oman.get("/console/inbox").get_data(as_text=True)
    reply = replies(db)[0]["id"]
    page = oman.get("/console/inbox").get_data(as_text=True)
    assert oman.post(f"/console/inbox/{reply}/handled", data={"csrf_token": csrf_of(page)}).status_code == 404
    desk = signed_in(app, db, "desk")
    assert desk.get("/console/inbox").status_code == 403
    assert 'href="/console/inbox"' not in desk.get("/console/").get_data(as_text=True)
