"""Rotating the blind-index key (SPEC §6b, §7 ``registry keys rotate-index``).

Records are indexed under key 1 by the session's app; apps built here are
configured with "2:new,1:old" (a rotation under way) or with the new key alone.
"""
from __future__ import annotations

import hashlib
import hmac
import shutil
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from registry import config
from tests.conftest import DATA_DIR, TEST_DATABASE_URL, make_app, national_body, owner_connection
from tests.test_audit import events, register
from tests.test_imports import csv_bytes, row
from tests.test_service import PRODUCTION_KEYS

NEW_KEY = bytes.fromhex("7e" * 32)


def old_key() -> bytes:
    """The session's index key: the development key file, one bare hex key (version 1)."""
    return bytes.fromhex((Path(DATA_DIR) / "blind_index.key").read_text().strip())


def index(key: bytes, field: str, number: str) -> bytes:
    return hmac.new(key, f"{field}:{number}".encode(), hashlib.sha256).digest()


def rotating_app():
    return make_app(REGISTRY_BLIND_INDEX_KEY=f"2:{NEW_KEY.hex()},1:{old_key().hex()}")


def stored() -> dict[str, tuple]:
    """id → (index key version, passport index, national ID index), as the tables' owner sees them."""
    with owner_connection() as owner:
        rows = owner.execute("SELECT id::text, index_key_version, passport_index, national_id_index "
                             "FROM nationals").fetchall()
    return {r[0]: (r[1], bytes(r[2]) if r[2] else None, bytes(r[3]) if r[3] else None) for r in rows}


def cli(app, *args):
    with app.app_context():  # the command runs in this app's context, not the session fixture's
        return app.test_cli_runner().invoke(args=list(args))


def passport_search(client, headers, number: str) -> list[str]:
    response = client.post("/api/v1/nationals/search", json={"passport_number": number, "purpose": "check"},
                           headers=headers)
    assert response.status_code == 200, response.get_json()
    return [n["id"] for n in response.get_json()["items"]]


# --------------------------------------------------------------------- during a rotation

def test_records_under_the_old_key_are_found_and_guarded_while_the_new_key_is_current(client, desk, db):
    first = register(client, desk, passport_number="P1000001A", national_id_number="NID-1")
    second = register(client, desk, passport_number="P1000002B", national_id_number="NID-2")
    assert {v[0] for v in stored().values()} == {1}
    rotating = rotating_app().test_client()

    assert passport_search(rotating, desk, "P1000001A") == [first["id"]]
    refused = rotating.post("/api/v1/nationals", json=national_body(passport_number="P1000001A"), headers=desk)
    assert refused.status_code == 409 and refused.get_json()["code"] == "duplicate-passport"
    moved = rotating.patch(f"/api/v1/nationals/{second['id']}", json={"passport_number": "P1000001A"},
                           headers=desk)
    assert moved.status_code == 409 and moved.get_json()["code"] == "duplicate-passport"
    assert len(stored()) == 2 and stored()[second["id"]][0] == 1  # nothing changed

    third = rotating.post("/api/v1/nationals", json=national_body(passport_number="P1000003C",
                                                                  national_id_number="NID-3"), headers=desk)
    assert third.status_code == 201
    assert stored()[third.get_json()["id"]] == (2, index(NEW_KEY, "passport", "P1000003C"),
                                                index(NEW_KEY, "national_id", "NID-3"))
    # An update moves the record to the current key: both indexes, whichever field changed.
    assert rotating.patch(f"/api/v1/nationals/{second['id']}", json={"passport_number": "P1000004D"},
                          headers=desk).status_code == 200
    assert stored()[second["id"]] == (2, index(NEW_KEY, "passport", "P1000004D"),
                                      index(NEW_KEY, "national_id", "NID-2"))
    assert rotating.patch(f"/api/v1/nationals/{first['id']}", json={"email": "new@example.org"},
                          headers=desk).status_code == 200
    assert stored()[first["id"]] == (2, index(NEW_KEY, "passport", "P1000001A"),
                                     index(NEW_KEY, "national_id", "NID-1"))
    assert passport_search(rotating, desk, "P1000004D") == [second["id"]]


def test_the_import_sees_passports_indexed_under_either_key(client, desk, db, tmp_path):
    under_old = register(client, desk, passport_number="P2000001A")
    rotating = rotating_app()
    under_new = rotating.test_client().post("/api/v1/nationals", json=national_body(passport_number="P2000002B"),
                                            headers=desk).get_json()
    path = tmp_path / "workers.csv"
    path.write_bytes(csv_bytes([row(passport_number="P2000001A"), row(passport_number="P2000002B"),
                                row(passport_number="P2000003C", national_id_number="NID-9")]))
    result = cli(rotating, "import", str(path))
    assert result.exit_code == 0, result.output
    assert "created 1, duplicates 2, rejected 0" in result.stdout
    records = stored()
    assert len(records) == 3
    created = next(v for k, v in records.items() if k not in (under_old["id"], under_new["id"]))
    assert created == (2, index(NEW_KEY, "passport", "P2000003C"), index(NEW_KEY, "national_id", "NID-9"))
    assert records[under_old["id"]][0] == 1


# --------------------------------------------------------------------- the command

def test_rotate_index_moves_every_record_to_the_new_key_and_then_the_old_key_can_go(client, desk, db):
    documented = register(client, desk, passport_number="P3000001A", national_id_number="NID-31")
    only_id = register(client, desk, passport_number=None, national_id_number="NID-32")
    neither = register(client, desk, passport_number=None, national_id_number=None)
    erased = register(client, desk, passport_number="P3000004D")
    assert client.delete(f"/api/v1/nationals/{erased['id']}", headers=desk).status_code == 204

    result = cli(rotating_app(), "keys", "rotate-index", "--batch", "2")
    assert result.exit_code == 0, result.output
    assert "2 of 4 re-indexed" in result.stderr and "4 of 4 re-indexed" in result.stderr
    assert "4 record(s) re-indexed under index key version 2" in result.stdout
    assert "version 1 can now be removed from REGISTRY_BLIND_INDEX_KEY" in result.stdout
    assert stored() == {
        documented["id"]: (2, index(NEW_KEY, "passport", "P3000001A"), index(NEW_KEY, "national_id", "NID-31")),
        only_id["id"]: (2, None, index(NEW_KEY, "national_id", "NID-32")),
        neither["id"]: (2, None, None),
        erased["id"]: (2, None, None),
    }
    audited = events(db, action="keys.rotate_index")
    assert [(e["outcome"], e["result_count"], e["details"]) for e in audited] == [
        ("ok", 4, {"index_key_version": 2})]

    new_only = make_app(REGISTRY_BLIND_INDEX_KEY=f"2:{NEW_KEY.hex()}").test_client()
    assert passport_search(new_only, desk, "P3000001A") == [documented["id"]]
    refused = new_only.post("/api/v1/nationals", json=national_body(passport_number="P3000001A"), headers=desk)
    assert refused.status_code == 409 and refused.get_json()["code"] == "duplicate-passport"
    # The old key alone no longer finds anything: the rotation really changed the indexes.
    assert passport_search(client, desk, "P3000001A") == []

    again = cli(rotating_app(), "keys", "rotate-index")
    assert again.exit_code == 0 and again.stdout.startswith("0 record(s) re-indexed")


def test_an_interrupted_rotation_continues_with_what_is_left(client, desk, db):
    passports = {register(client, desk, passport_number=f"P40000{n:02d}A")["id"]: f"P40000{n:02d}A"
                 for n in range(5)}
    ids = sorted(passports)  # the rotation's order: uuid order is the order of their text
    # A real failure between batches: the database refuses the third record's update.
    with owner_connection() as owner:
        owner.execute(f"""
            CREATE FUNCTION test_refuse_reindex() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.id = '{ids[2]}' AND NEW.index_key_version = 2 THEN
                    RAISE EXCEPTION 'refused by the test';
                END IF;
                RETURN NEW;
            END $$""")
        owner.execute("CREATE TRIGGER test_refuse_reindex BEFORE UPDATE ON nationals FOR EACH ROW "
                      "EXECUTE FUNCTION test_refuse_reindex()")
    try:
        stopped = cli(rotating_app(), "keys", "rotate-index", "--batch", "1")
    finally:
        with owner_connection() as owner:
            owner.execute("DROP TRIGGER test_refuse_reindex ON nationals")
            owner.execute("DROP FUNCTION test_refuse_reindex()")
    assert stopped.exit_code == 1, stopped.output
    assert "1 of 5 re-indexed" in stopped.stderr and "2 of 5 re-indexed" in stopped.stderr
    assert "3 of 5" not in stopped.stderr
    assert "stopped after 2 of 5 record(s)" in stopped.stderr and "rerun" in stopped.stderr
    assert [stored()[i][0] for i in ids] == [2, 2, 1, 1, 1]

    resumed = cli(rotating_app(), "keys", "rotate-index", "--batch", "2")
    assert resumed.exit_code == 0, resumed.output
    assert "2 of 3 re-indexed" in resumed.stderr and "3 of 3 re-indexed" in resumed.stderr
    assert "3 record(s) re-indexed under index key version 2" in resumed.stdout
    assert stored() == {i: (2, index(NEW_KEY, "passport", p), None) for i, p in passports.items()}
    audited = events(db, action="keys.rotate_index")
    assert sorted((e["outcome"], e["result_count"]) for e in audited) == [("error", 2), ("ok", 3)]


def test_a_number_changed_while_the_rotation_waits_is_indexed_as_changed(client, desk, db):
    """The rotation locks what it re-indexes: a change committed meanwhile is not overwritten by an index of
    the number it replaced."""
    from registry.crypto import keyring
    national = register(client, desk, passport_number="P8000001A")
    owner_id = uuid.UUID(national["id"])
    changed = keyring().encrypt("passport", owner_id, "P8000002B")
    editor = psycopg.connect(TEST_DATABASE_URL)  # one transaction, holding the row as an API update would
    editor.execute("UPDATE nationals SET passport_ciphertext = %s, passport_index = %s WHERE id = %s",
                   (changed, keyring().blind_index("passport", "P8000002B"), owner_id))
    outcome = {}
    rotation = threading.Thread(target=lambda: outcome.update(result=cli(rotating_app(), "keys", "rotate-index")))
    rotation.start()
    try:
        deadline = time.monotonic() + 60
        with owner_connection() as watcher:
            while not watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND wait_event_type = 'Lock'").fetchone()[0]:
                assert time.monotonic() < deadline and rotation.is_alive(), "the rotation never waited"
                time.sleep(0.05)
    finally:
        editor.commit()
        editor.close()
        rotation.join()
    assert outcome["result"].exit_code == 0, outcome["result"].output
    assert stored()[national["id"]] == (2, index(NEW_KEY, "passport", "P8000002B"), None)


def test_a_duplicate_that_slipped_in_during_a_rolling_restart_is_named_and_left_on_the_old_key(
        client, desk, db):
    rotating = rotating_app()
    newer = rotating.test_client().post("/api/v1/nationals", json=national_body(passport_number="P5000001A"),
                                        headers=desk).get_json()
    # A process not yet restarted (old key only) does not see the new record and registers the passport again.
    older = register(client, desk, passport_number="P5000001A")
    other = register(client, desk, passport_number="P5000002B")
    assert sorted(passport_search(rotating.test_client(), desk, "P5000001A")) == sorted([newer["id"], older["id"]])

    result = cli(rotating, "keys", "rotate-index")
    assert result.exit_code == 1
    assert f"{older['id']}: same passport and nationality as {newer['id']}" in result.stderr
    assert "version 1 is still in use" in result.stderr
    assert "P5000001A" not in result.output
    records = stored()
    assert records[older["id"]] == (1, index(old_key(), "passport", "P5000001A"), None)
    assert records[other["id"]][0] == 2 and records[newer["id"]][0] == 2
    assert [(e["outcome"], e["result_count"]) for e in events(db, action="keys.rotate_index")] == [("error", 1)]

    # Resolved (one record erased), a rerun finishes the rotation.
    assert client.delete(f"/api/v1/nationals/{older['id']}", headers=desk).status_code == 204
    finished = cli(rotating, "keys", "rotate-index")
    assert finished.exit_code == 0, finished.output
    assert "1 record(s) re-indexed" in finished.stdout and "can now be removed" in finished.stdout


def test_an_undecryptable_record_is_named_and_the_others_are_re_indexed(client, desk, db):
    first = register(client, desk, passport_number="P6000001A")
    second = register(client, desk, passport_number="P6000002B")
    with owner_connection() as owner:  # a ciphertext moved to another record does not decrypt
        owner.execute("UPDATE nationals SET passport_ciphertext = (SELECT passport_ciphertext FROM nationals "
                      "WHERE id = %s) WHERE id = %s", (first["id"], second["id"]))
    result = cli(rotating_app(), "keys", "rotate-index")
    assert result.exit_code == 1
    assert f"{second['id']}: a stored value failed authentication" in result.stderr
    assert stored()[first["id"]][0] == 2 and stored()[second["id"]][0] == 1


def test_new_key_adds_an_index_key_version_to_the_development_key_file(client, desk, db, tmp_path, monkeypatch):
    national = register(client, desk, passport_number="P7000001A")
    for name in ("token", "encryption", "audit", "blind_index"):
        shutil.copy(Path(DATA_DIR) / f"{name}.key", tmp_path / f"{name}.key")
    monkeypatch.setenv("REGISTRY_DATA_DIR", str(tmp_path))
    local = make_app()
    result = cli(local, "keys", "rotate-index", "--new-key")
    assert result.exit_code == 0, result.output
    assert f"added index key version 2 to {tmp_path / 'blind_index.key'}" in result.stderr
    assert "restart the API and workers" in result.stderr
    written = (tmp_path / "blind_index.key").read_text()
    assert written.endswith(f",1:{old_key().hex()}") and written.startswith("2:")
    new_key = bytes.fromhex(written.split(",")[0][2:])
    assert stored()[national["id"]] == (2, index(new_key, "passport", "P7000001A"), None)
    assert passport_search(make_app().test_client(), desk, "P7000001A") == [national["id"]]

    production = make_app(REGISTRY_ENV="production")
    refused = cli(production, "keys", "rotate-index", "--new-key")
    assert refused.exit_code != 0 and "development" in refused.output
    from_environment = make_app(REGISTRY_BLIND_INDEX_KEY=f"3:{'9a' * 32}")
    refused = cli(from_environment, "keys", "rotate-index", "--new-key")
    assert refused.exit_code != 0 and "not the local key file" in refused.output
    assert (tmp_path / "blind_index.key").read_text() == written


# --------------------------------------------------------------------- the migration

def test_the_migration_refuses_to_go_down_while_records_use_different_index_keys(caplog):
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import inspect

    from registry.config import database_url
    from registry.extensions import db as database
    from tests.conftest import recreate_database
    scratch = TEST_DATABASE_URL + "_index_versions"
    recreate_database(scratch)
    app = make_app(SQLALCHEMY_DATABASE_URI=database_url(scratch))
    try:
        with app.app_context():
            upgrade()
            with psycopg.connect(scratch, autocommit=True) as owner:
                owner.execute("INSERT INTO nationals (id, nationality, household_id, jurisdiction_country) "
                              "SELECT gen_random_uuid(), 'PH', gen_random_uuid(), 'AE' FROM generate_series(1, 2)")
                assert owner.execute("SELECT array_agg(index_key_version) FROM nationals").fetchone()[0] == [1, 1]
                owner.execute("UPDATE nationals SET index_key_version = 2 "
                              "WHERE id = (SELECT id FROM nationals LIMIT 1)")
            with pytest.raises(SystemExit):  # flask-migrate logs the migration's error and exits
                downgrade(revision="0006")
            assert "indexed under index key versions [1, 2]" in caplog.text
            database.engine.dispose()
            assert "index_key_version" in {c["name"] for c in inspect(database.engine).get_columns("nationals")}
            with psycopg.connect(scratch, autocommit=True) as owner:
                owner.execute("UPDATE nationals SET index_key_version = 2")
            downgrade(revision="0006")
            database.engine.dispose()
            assert "index_key_version" not in {c["name"] for c in inspect(database.engine).get_columns("nationals")}
            database.engine.dispose()
    finally:
        admin = scratch.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch.rsplit("/", 1)[1]}" WITH (FORCE)')


# --------------------------------------------------------------------- configuration

@pytest.mark.parametrize("value", [
    "cd" * 32,                                     # one key: version 1, as before
    "cd" * 40,                                     # longer than 32 bytes
    f"2:{'cd' * 32},1:{'dc' * 32}",                # newest first
    f"1:{'dc' * 32},2:{'cd' * 32}",                # a new key known before it becomes current
    f"255:{'cd' * 32}",
])
def test_index_keys_one_bare_key_or_versions_newest_first_are_accepted(value):
    from registry.crypto import parse_index_keys
    loaded = config.load({"REGISTRY_ENV": "production", **PRODUCTION_KEYS, "REGISTRY_BLIND_INDEX_KEY": value})
    current, keys = parse_index_keys(loaded["REGISTRY_BLIND_INDEX_KEY"])
    first = value.split(",")[0]
    assert current == (int(first.split(":")[0]) if ":" in first else 1)
    assert keys[current] == bytes.fromhex(first.split(":")[-1])


@pytest.mark.parametrize("value, reason", [
    ("cd" * 31, "at least 32 bytes"),
    ("zz" * 32, "hex"),
    (f"0:{'cd' * 32}", "1-255"),
    (f"256:{'cd' * 32}", "1-255"),
    (f"x:{'cd' * 32}", "1-255"),
    (f"2:{'cd' * 32},2:{'dc' * 32}", "given twice"),
    (f"2:{'cd' * 32},1:{'dc' * 16}", "at least 32 bytes"),
    (f"2:{'cd' * 32},1:", "at least 32 bytes"),
    (",", "no key"),
    (f"2:{'cd' * 32},1:{'ab' * 32}", "must differ"),   # an old version equal to the token key
    (f"2:{'ef' * 32}", "must differ"),                 # the audit key
])
def test_malformed_or_reused_index_keys_are_refused(value, reason):
    with pytest.raises(config.ConfigError, match="REGISTRY_BLIND_INDEX_KEY") as refused:
        config.load({"REGISTRY_ENV": "production", **PRODUCTION_KEYS, "REGISTRY_BLIND_INDEX_KEY": value})
    assert reason in str(refused.value)
    assert "cd" * 16 not in str(refused.value)  # a key is never quoted


def test_the_development_key_file_may_hold_versions_too(tmp_path):
    (tmp_path / "blind_index.key").write_text(f"3:{'cd' * 32},1:{'dc' * 32}\n")
    from registry.crypto import parse_index_keys
    loaded = config.load({"REGISTRY_DATA_DIR": str(tmp_path)})
    assert parse_index_keys(loaded["REGISTRY_BLIND_INDEX_KEY"]) == (
        3, {3: bytes.fromhex("cd" * 32), 1: bytes.fromhex("dc" * 32)})
