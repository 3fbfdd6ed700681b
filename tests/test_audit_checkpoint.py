"""Signed audit checkpoints: a chain head kept outside the database catches a rewrite made with the audit key."""
from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from psycopg.rows import dict_row
from sqlalchemy import text

from registry import config
from tests.conftest import DATA_DIR, owner_connection
from tests.test_audit import events, register, seal
from tests.test_service import PRODUCTION_KEYS, run_cli

FIELDS = {"format", "version", "through_seq", "head_hash", "events", "sealed_at", "public_key", "signature"}


def signed_message(document: dict) -> bytes:
    """The auditor's recipe: every field but the signature, as compact JSON with sorted keys."""
    fields = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def take_checkpoint(path: Path) -> dict:
    result = run_cli("audit", "checkpoint")
    assert result.returncode == 0, result.stderr
    path.write_text(result.stdout)
    return json.loads(result.stdout)


def verify_with(*paths: Path):
    args = [part for path in paths for part in ("--checkpoint", str(path))]
    return run_cli("audit", "verify", *args)


def chain_rows(owner) -> list[tuple]:
    return owner.execute("SELECT chain_seq, chain_hash FROM audit_events WHERE chain_seq IS NOT NULL "
                         "ORDER BY chain_seq").fetchall()


@pytest.fixture
def trail(client, desk, db):
    """Twelve sealed events and two not sealed yet; returns the national's id."""
    national = register(client, desk)
    for _ in range(11):
        client.get(f"/api/v1/nationals/{national['id']}", headers=desk)
    assert seal(db) == 12
    for _ in range(2):
        client.get(f"/api/v1/nationals/{national['id']}", headers=desk)
    db.session.rollback()  # hold no lock: the CLI and the owner connection write from elsewhere
    return national["id"]


def add_events(client, desk, national_id: str, how_many: int) -> None:
    for _ in range(how_many):
        assert client.get(f"/api/v1/nationals/{national_id}", headers=desk).status_code == 200


# --------------------------------------------------------------------- an attacker holding the audit key

def _canonical(row: dict, seq: int) -> bytes:
    """The chain's definition of an event's bytes, written out again here (not imported from the service)."""
    values = {
        "seq": seq, "id": row["id"], "at": row["at"].isoformat(),
        "actor_id": str(row["actor_id"]) if row["actor_id"] else None, "actor_role": row["actor_role"],
        "action": row["action"], "outcome": row["outcome"], "object_type": row["object_type"],
        "object_ids": [str(i) for i in row["object_ids"] or ()], "result_count": row["result_count"],
        "purpose": row["purpose"], "details": row["details"],
    }
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rewrite_consistently(chain_seq: int, *, purpose: str, actor_id: uuid.UUID | None = None) -> None:
    """Change one sealed event, then recompute every chain hash and seal with the audit key, as an owner would."""
    audit_key = bytes.fromhex((Path(DATA_DIR) / "audit.key").read_text().strip())
    with owner_connection() as owner:
        owner.execute("SET session_replication_role = replica")  # a superuser switching the trigger off
        owner.execute("UPDATE audit_events SET purpose = %s, actor_id = coalesce(%s, actor_id) WHERE chain_seq = %s",
                      (purpose, actor_id, chain_seq))
        cursor = owner.cursor(row_factory=dict_row)
        rows = cursor.execute("SELECT * FROM audit_events WHERE chain_seq IS NOT NULL ORDER BY chain_seq").fetchall()
        previous, heads = bytes(32), {}
        for row in rows:
            previous = hmac.new(audit_key, previous + _canonical(row, row["chain_seq"]), hashlib.sha256).digest()
            heads[row["chain_seq"]] = previous
            owner.execute("UPDATE audit_events SET chain_hash = %s WHERE id = %s", (previous, row["id"]))
        for seal_id, through_seq in owner.execute("SELECT id, through_seq FROM audit_seals").fetchall():
            owner.execute("UPDATE audit_seals SET head_hash = %s WHERE id = %s", (heads[through_seq], seal_id))


# --------------------------------------------------------------------- the checkpoint itself

def test_checkpoint_prints_a_signed_head_that_verifies_independently_and_matches_the_database(trail, db, tmp_path):
    result = run_cli("audit", "checkpoint")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # stdout holds the document and nothing else
    assert set(document) == FIELDS
    assert document["format"] == "sagip-audit-checkpoint" and document["version"] == 1

    public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(document["public_key"]))
    public_key.verify(bytes.fromhex(document["signature"]), signed_message(document))  # raises if it does not
    kept_private = (Path(DATA_DIR) / "audit_signing.key").read_text().strip()
    service_public = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(kept_private)).public_key()
    assert service_public.public_bytes_raw().hex() == document["public_key"]

    with owner_connection() as owner:
        chain = chain_rows(owner)
        seal_at = owner.execute("SELECT sealed_at FROM audit_seals WHERE through_seq = %s",
                                (document["through_seq"],)).fetchone()[0]
    assert len(chain) == 14  # the two events not sealed before were sealed by the checkpoint
    assert document["through_seq"] == chain[-1][0] == 14 and document["events"] == 14
    assert document["head_hash"] == bytes(chain[-1][1]).hex()
    sealed_at = datetime.fromisoformat(document["sealed_at"].replace("Z", "+00:00"))
    assert document["sealed_at"].endswith("Z") and sealed_at == seal_at

    act = events(db, action="audit.checkpoint")
    assert len(act) == 1 and act[0]["actor_role"] == "admin"
    assert act[0]["details"] == {"through_seq": 14, "head_hash": document["head_hash"]}
    assert "checkpoint through chain entry 14" in result.stderr

    path = tmp_path / "checkpoint.json"
    path.write_text(result.stdout)
    verified = verify_with(path)
    assert verified.returncode == 0, verified.stderr
    assert "reaches the head of 1 checkpoint(s)" in verified.stdout


def test_checkpoint_of_an_empty_trail_is_refused(db):
    result = run_cli("audit", "checkpoint")
    assert result.returncode == 1 and result.stdout == ""
    assert "no sealed audit events" in result.stderr


# --------------------------------------------------------------------- a consistent rewrite

def test_a_consistent_rewrite_passes_plain_verify_but_not_the_kept_checkpoint(trail, db, tmp_path):
    path = tmp_path / "checkpoint.json"
    kept = take_checkpoint(path)
    assert kept["through_seq"] == 14

    rewrite_consistently(5, purpose="routine check", actor_id=uuid.uuid4())

    plain = run_cli("audit", "verify")
    assert plain.returncode == 0, plain.stderr  # the gap: the database alone cannot tell
    assert "audit trail intact" in plain.stdout

    checked = verify_with(path)
    assert checked.returncode == 1, checked.stdout
    assert "BROKEN" in checked.stderr and "intact" not in checked.stdout
    assert "events up to chain entry 14 were rewritten" in checked.stderr, checked.stderr
    assert f"first bad entry: chain entry 14 (the head kept in {path}; rewritten among entries 1-14)" \
        in checked.stderr, checked.stderr


def test_several_checkpoints_narrow_down_the_rewritten_entries(trail, client, desk, db, tmp_path):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    assert take_checkpoint(first)["through_seq"] == 14
    add_events(client, desk, trail, 3)
    assert take_checkpoint(second)["through_seq"] == 18  # the first checkpoint's own event + three reads

    rewrite_consistently(16, purpose="nothing happened here")

    assert run_cli("audit", "verify").returncode == 0
    assert verify_with(first).returncode == 0  # entries 1-14 still reach the first kept head
    checked = verify_with(first, second)
    assert checked.returncode == 1
    assert "events up to chain entry 18 were rewritten" in checked.stderr, checked.stderr
    assert f"first bad entry: chain entry 18 (the head kept in {second}; rewritten among entries 15-18); " \
           "14 entries before it verified" in checked.stderr, checked.stderr


def test_a_chain_cut_back_below_the_checkpoint_with_its_seals_is_caught(trail, db, tmp_path):
    path = tmp_path / "checkpoint.json"
    take_checkpoint(path)
    with owner_connection() as owner:
        owner.execute("SET session_replication_role = replica")
        owner.execute("DELETE FROM audit_events WHERE chain_seq > 10")
        owner.execute("DELETE FROM audit_seals WHERE through_seq > 10")
    assert run_cli("audit", "verify").returncode == 0
    checked = verify_with(path)
    assert checked.returncode == 1
    assert f"the chain ends at entry 10 but {path} was taken through entry 14" in checked.stderr, checked.stderr


def test_events_recorded_after_the_checkpoint_do_not_fail_it(trail, client, desk, db, tmp_path):
    path = tmp_path / "checkpoint.json"
    take_checkpoint(path)
    add_events(client, desk, trail, 4)
    assert seal(db) == 5  # the checkpoint's own event and the four reads
    add_events(client, desk, trail, 2)  # and two not sealed yet
    checked = verify_with(path)
    assert checked.returncode == 0, checked.stderr
    assert "19 sealed entries verified, 2 not sealed yet" in checked.stdout
    assert "reaches the head of 1 checkpoint(s)" in checked.stdout


# --------------------------------------------------------------------- checkpoint files that are refused

def test_a_checkpoint_altered_by_one_byte_is_refused(trail, db, tmp_path):
    path = tmp_path / "checkpoint.json"
    kept = take_checkpoint(path)
    original = path.read_bytes()
    at = original.index(kept["head_hash"].encode()) + 7
    other_digit = b"1" if original[at:at + 1] == b"0" else b"0"  # still a hex digit: only the signature can tell
    path.write_bytes(original[:at] + other_digit + original[at + 1:])
    checked = verify_with(path)
    assert checked.returncode == 2 and checked.stdout == ""
    assert f"checkpoint {path} refused: its signature does not match its contents" in checked.stderr, checked.stderr


def test_every_single_byte_change_of_a_checkpoint_is_refused(trail, app, db, tmp_path):
    from registry.audit import services
    path = tmp_path / "checkpoint.json"
    take_checkpoint(path)
    original = path.read_bytes()
    assert services.read_checkpoint(original, "kept").through_seq == 14
    for at in range(len(original)):
        altered = original[:at] + bytes([original[at] ^ 0x01]) + original[at + 1:]
        with pytest.raises(services.CheckpointRefused, match="^checkpoint kept refused: "):
            services.read_checkpoint(altered, "kept")


def test_a_checkpoint_signed_by_another_key_is_refused(trail, db, tmp_path):
    kept = take_checkpoint(tmp_path / "checkpoint.json")
    other = Ed25519PrivateKey.generate()

    foreign = {**kept, "public_key": other.public_key().public_bytes_raw().hex()}
    foreign["signature"] = other.sign(signed_message(foreign)).hex()
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    checked = verify_with(tmp_path / "foreign.json")
    assert checked.returncode == 2
    assert "was not signed by this service's audit signing key" in checked.stderr, checked.stderr

    forged = {**kept, "through_seq": 13, "events": 13}
    forged["signature"] = other.sign(signed_message(forged)).hex()  # claims this service's key
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(kept["public_key"])).verify(
            bytes.fromhex(forged["signature"]), signed_message(forged))
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    checked = verify_with(tmp_path / "forged.json")
    assert checked.returncode == 2
    assert "its signature does not match its contents" in checked.stderr, checked.stderr


@pytest.mark.parametrize("content, reason", [
    (b"", "not a JSON document"),
    (b"\xff\xfe", "not a JSON document"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"format": "something-else"}', "is not a sagip-audit-checkpoint"),
    (b'{"format": "sagip-audit-checkpoint", "version": 2}', "its version is not 1"),
    (b'{"format": "sagip-audit-checkpoint", "version": true}', "its version is not 1"),
    (b'{"format": "sagip-audit-checkpoint", "version": 1}', "missing field(s): events, head_hash"),
    (b'{"format": "sagip-audit-checkpoint", "version": 1, "through_seq": "12", "head_hash": "", "events": 12, '
     b'"sealed_at": "", "public_key": "", "signature": ""}', "through_seq must be a whole number"),
])
def test_a_file_that_is_no_checkpoint_is_refused_naming_the_reason(db, tmp_path, content, reason):
    path = tmp_path / "not-a-checkpoint.json"
    path.write_bytes(content)
    checked = verify_with(path)
    assert checked.returncode == 2 and checked.stdout == ""
    assert f"checkpoint {path} refused: " in checked.stderr and reason in checked.stderr, checked.stderr


def test_a_refused_checkpoint_stops_verify_before_the_chain_is_read(trail, db, tmp_path):
    good = tmp_path / "good.json"
    take_checkpoint(good)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    checked = verify_with(good, bad)
    assert checked.returncode == 2 and "intact" not in checked.stdout
    assert f"checkpoint {bad} refused" in checked.stderr and f"{good} refused" not in checked.stderr


# --------------------------------------------------------------------- the signing key

SIGNING_KEY = "5a" * 32


def test_production_refuses_to_start_without_the_signing_key(tmp_path):
    environ = {**PRODUCTION_KEYS, "REGISTRY_ENV": "production", "REGISTRY_DATA_DIR": str(tmp_path)}
    environ.pop("REGISTRY_AUDIT_SIGNING_KEY", None)
    with pytest.raises(config.ConfigError, match="REGISTRY_AUDIT_SIGNING_KEY is required"):
        config.load(environ)
    assert not list(tmp_path.iterdir())
    loaded = config.load({**environ, "REGISTRY_AUDIT_SIGNING_KEY": SIGNING_KEY})
    assert loaded["REGISTRY_AUDIT_SIGNING_KEY"] == bytes.fromhex(SIGNING_KEY)


@pytest.mark.parametrize("value, reason", [
    ("5a" * 31, "32 bytes"), ("5a" * 33, "32 bytes"), ("zz" * 32, "hex"),
    (PRODUCTION_KEYS["REGISTRY_AUDIT_KEY"], "must differ"), (PRODUCTION_KEYS["REGISTRY_TOKEN_KEY"], "must differ"),
])
def test_a_malformed_or_reused_signing_key_is_refused(value, reason):
    with pytest.raises(config.ConfigError, match=reason):
        config.load({**PRODUCTION_KEYS, "REGISTRY_ENV": "production", "REGISTRY_AUDIT_SIGNING_KEY": value})


def test_development_generates_one_signing_key_shared_by_every_process(tmp_path):
    first = config.load({"REGISTRY_DATA_DIR": str(tmp_path)})["REGISTRY_AUDIT_SIGNING_KEY"]
    second = config.load({"REGISTRY_DATA_DIR": str(tmp_path)})["REGISTRY_AUDIT_SIGNING_KEY"]
    assert first == second and len(first) == 32
    assert oct((tmp_path / "audit_signing.key").stat().st_mode)[-3:] == "600"


def test_the_checkpoint_command_prints_no_key_material_but_the_public_key(trail, db):
    result = run_cli("audit", "checkpoint")
    assert result.returncode == 0, result.stderr
    private = (Path(DATA_DIR) / "audit_signing.key").read_text().strip()
    audit_key = (Path(DATA_DIR) / "audit.key").read_text().strip()
    for secret in (private, audit_key):
        assert secret not in result.stdout and secret not in result.stderr
    db.session.rollback()
    stored = json.dumps([dict(r) for r in db.session.execute(text("SELECT * FROM audit_events")).mappings()],
                        default=str)
    assert private not in stored
