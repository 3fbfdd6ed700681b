"""SMS replies end to end through the real gateway: a phone's message injected into Kannel's fake SMSC, passed by
smsbox's sms-service (post-url, the secret in its query, the sender in X-Kannel-From) to the live app's hook,
changing a welfare status; shared and unknown numbers reach the inbox; nothing is sent back."""
from __future__ import annotations

import time

from tests.test_replies import FAMILY, MARIA, UNKNOWN, coordinator, replies, scene, welfare_of  # noqa: F401


def wait_for_replies(db, n: int, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = replies(db)
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_reply_through_kannel_changes_the_welfare_status(gateway_stack, client, db, coordinator, scene):
    gateway_stack.clear()
    gateway_stack.inject_sms("00" + MARIA[1:], "SAGIP", "LIGTAS nasa bubong kami")
    (reply,) = wait_for_replies(db, 1)
    assert (reply["phone"], reply["outcome"], reply["keyword"]) == (MARIA, "applied", "LIGTAS")
    answer = welfare_of(client, coordinator, scene, "maria")
    assert (answer["welfare_status"], answer["note"]) == ("safe", "nasa bubong kami")
    assert answer["history"][-1]["source"] == "sms" and answer["history"][-1]["contact"]["channel"] == "sms"
    # The hook answered an empty body: Kannel sent nothing back to the phone.
    assert gateway_stack.received_sms(timeout=2) == []


def test_shared_unknown_and_stop_through_kannel_reach_the_inbox(gateway_stack, client, db, coordinator, scene):
    gateway_stack.clear()
    gateway_stack.inject_many([(FAMILY, "SAGIP", "1"), (UNKNOWN, "SAGIP", "مرحبا، أنا بخير"),
                               (MARIA, "SAGIP", "STOP"), (MARIA[1:], "SAGIP", "2 need water")])
    found = wait_for_replies(db, 4)
    by_text = {r["text"]: r for r in found}
    assert by_text["1"]["outcome"] == "needs_review" and by_text["1"]["review_reason"] == "shared_number"
    assert by_text["مرحبا، أنا بخير"]["outcome"] == "unknown_number"  # UCS-2 text intact
    assert by_text["STOP"]["outcome"] == "opted_out"
    assert by_text["2 need water"]["outcome"] == "applied"
    assert welfare_of(client, coordinator, scene, "maria")["welfare_status"] == "needs_assistance"
    unread = client.get("/api/v1/inbox", headers=coordinator, query_string={"handled": "false"}).get_json()
    assert {i["text"] for i in unread["items"]} == {"1", "مرحبا، أنا بخير", "2 need water"}
    assert gateway_stack.received_sms(timeout=1) == []
