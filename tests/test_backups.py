"""Encrypted backups (SPEC §12): `registry backup FILE`, `registry restore FILE` into a fresh database, with the
service's keys; a wrong key, an altered byte or a file cut short restores nothing."""
from __future__ import annotations


import io
import json
import struct
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from registry import config
from registry.backups import format
from registry.config import database_url
from tests.conftest import DATA_DIR, TEST_DATABASE_URL, make_app, owner_connection, truncate_all
from tests.test_audit import register, seal
from tests.test_service import run_cli

# People whose every personal detail is unique to this file, to look for in the backup's bytes.
PEOPLE = [{"family_name": f"Magbanua{tag}", "given_names": f"Rosalinda {tag}teodora", "passport_number": passport,
           "national_id_number": f"NID-{passport}", "phones": [f"+97150{n}"], "email": f"rosalinda{tag}@example.org",
           "next_of_kin": {"name": f"Crisanto Magbanua{tag}", "relation": "spouse", "phone": f"+63917{n}"}}
          for tag, passport, n in (("Ay", "P8100001B", 8100001), ("Bi", "P8100002C", 8100002),
                                   ("Ku", "P8100003D", 8100003))]


def restore_url(name: str) -> str:
    return TEST_DATABASE_URL.rpartition("/")[0] + "/" + name


def admin_url() -> str:
    return TEST_DATABASE_URL.rpartition("/")[0] + "/postgres"


@pytest.fixture(scope="module")
def made(app, tmp_path_factory):
    """A backup of a database with nationals (encrypted documents), a sealed audit trail and jobs: what
    went in. The source tables are emptied once it is written."""
    from registry.auth import scope
    from registry.auth.services import create_user, issue_token
    from registry.extensions import db
    path = tmp_path_factory.mktemp("backups") / "registry.sagip"
    try:
        with app.app_context():
            scope.use_everything()
            token = issue_token(create_user("backup-desk", "desk"))
            db.session.commit()
        headers = {"Authorization": f"Bearer {token}"}
        client = app.test_client()
        nationals = [register(client, headers, **person) for person in PEOPLE]
        for national in nationals:
            assert client.get(f"/api/v1/nationals/{national['id']}", headers=headers).status_code == 200
        with app.app_context():
            scope.use_everything()
            sealed = seal(db)
            db.session.commit()
        with owner_connection() as owner:
            owner.execute("INSERT INTO jobs (id, kind, status, progress) VALUES (%s, 'import', 'succeeded', 1), "
                          "(%s, 'exposure', 'queued', 0)", (uuid.uuid4(), unfinished := uuid.uuid4()))
            owner.execute("INSERT INTO outbox (job_id, task, dispatched_at) VALUES (%s, 'tasks.exposure.run', "
                          "now())", (unfinished,))
            policies = owner.execute("SELECT tablename, policyname FROM pg_policies ORDER BY 1, 2").fetchall()
        with app.app_context():
            result = app.test_cli_runner().invoke(args=["backup", str(path)])
        assert result.exit_code == 0, result.output
        assert "backup written to" in result.output
        # The keys the service that wrote the backup runs with: its data folder's, but where the session's
        # gateway stack is up, REGISTRY_SMS_HOOK_SECRET is the stack's (set in app.config, not in a file).
        keys = config.secret_settings(app.config)
        return {"path": path, "key": (Path(DATA_DIR) / "backup.key").read_text().strip(), "headers": headers,
                "keys": keys,
                "nationals": nationals, "sealed": sealed, "unfinished_job": unfinished, "policies": policies}
    finally:
        truncate_all()


@pytest.fixture
def fresh_database():
    """A new, empty database (PostGIS not even created: the backup brings its extensions)."""
    name = f"sagip_restore_backup_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield restore_url(name)
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def empty_database():
    """One empty database the refused restores aim at: each must leave it empty."""
    name = f"sagip_restore_backup_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield restore_url(name)
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def own_tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                           "AND tablename <> 'spatial_ref_sys'").fetchall()]


def restore_in_process(path, url: str, data_dir: Path, key: str, *extra: str, env=None):
    """`registry restore` in this process: for the refused restores, which stop before building an app."""
    from registry.cli import main
    environ = {"DATABASE_URL": url, "REGISTRY_DATA_DIR": str(data_dir), "REGISTRY_BACKUP_KEY": key,
               "REGISTRY_ENV": "development", **(env or {})}
    return CliRunner().invoke(main, ["restore", str(path), *extra], env=environ)


def service_keys(data_dir: Path) -> dict[str, str]:
    """The keys in a data folder."""
    return {name: (data_dir / f"{config.development_key_name(name)}.key").read_text().strip()
            for name in config.SECRETS}


# --------------------------------------------------------------------- the whole round trip

def test_a_backup_restores_into_a_fresh_database_where_the_restored_keys_read_it(made, fresh_database, tmp_path):
    machine = tmp_path / "another-machine"
    result = run_cli("restore", str(made["path"]), env={
        "DATABASE_URL": fresh_database, "REGISTRY_DATA_DIR": str(machine), "REGISTRY_BACKUP_KEY": made["key"]})
    assert result.returncode == 0, result.stderr
    assert f"audit trail intact: {made['sealed']} sealed entries verified" in result.stdout
    assert "rows: 3 nationals" in result.stdout and "every table as counted in the backup" in result.stdout
    assert "document numbers: 3 record(s) decrypted" in result.stdout
    assert "jobs: 1 unfinished at backup time" in result.stdout

    # The keys went where a development service reads them, private, and they are the backup's.
    assert service_keys(machine) == made["keys"]
    assert (machine / "backup.key").read_text().strip() == made["key"]
    assert {oct(p.stat().st_mode)[-3:] for p in machine.iterdir()} == {"600"}

    # The service on the restored database, with the keys read back from the new data folder.
    keys = config.load({"REGISTRY_DATA_DIR": str(machine)})
    assert len(list(machine.iterdir())) == len(config.SECRETS) + 1  # none generated anew
    restored = make_app(SQLALCHEMY_DATABASE_URI=database_url(fresh_database),
                        **{name: keys[name] for name in config.SECRETS})
    client = restored.test_client()
    for person, national in zip(PEOPLE, made["nationals"]):
        # The token was issued before the backup: the restored token key still knows it.
        got = client.get(f"/api/v1/nationals/{national['id']}", headers=made["headers"])
        assert got.status_code == 200, got.get_json()
        assert got.get_json()["passport_number"] == person["passport_number"]
        assert got.get_json()["national_id_number"] == person["national_id_number"]
    found = client.post("/api/v1/nationals/search", headers=made["headers"],
                        json={"passport_number": PEOPLE[1]["passport_number"], "purpose": "restore check"})
    assert [n["id"] for n in found.get_json()["items"]] == [made["nationals"][1]["id"]]  # the blind index key
    with restored.app_context():
        from registry.audit import services as audit
        from registry.auth import scope
        from registry.extensions import db
        scope.use_everything()
        chain = audit.verify()
        assert chain.ok and chain.checked == made["sealed"]
        db.session.remove()
        db.engine.dispose()

    with psycopg.connect(fresh_database) as conn:
        # Row-level security and its policies came back (the service's role is bound by them).
        assert conn.execute("SELECT tablename, policyname FROM pg_policies ORDER BY 1, 2").fetchall() == \
            made["policies"]
        assert conn.execute("SELECT relforcerowsecurity FROM pg_class WHERE relname = 'nationals'").fetchone()[0]
        assert conn.execute("SELECT has_table_privilege('sagip_app', 'nationals', 'SELECT')").fetchone()[0]
        # The job the old Redis held is sent again; the restore is in the trail.
        assert conn.execute("SELECT dispatched_at FROM outbox WHERE job_id = %s",
                            (made["unfinished_job"],)).fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM audit_events WHERE action = 'backup.restore'").fetchone() == (1,)


def test_the_backup_file_holds_no_personal_data_and_no_key_in_clear(made):
    data = made["path"].read_bytes()
    assert data.startswith(b"SAGIPBAK")
    assert oct(made["path"].stat().st_mode)[-3:] == "600"
    secrets = [*made["keys"].values(), made["key"]]
    for person in PEOPLE:
        for value in (person["family_name"], person["given_names"], person["passport_number"],
                      person["national_id_number"], person["phones"][0], person["email"],
                      person["next_of_kin"]["name"]):
            for form in (value, value.lower(), value.upper()):
                assert form.encode() not in data and form.encode("utf-16-le") not in data
    for secret in secrets:
        assert secret.encode() not in data
        for version in secret.split(","):  # "2:<hex>,1:<hex>": each key's bytes too
            value = version.split(":")[-1]
            if all(c in "0123456789abcdefABCDEF" for c in value) and len(value) % 2 == 0:
                assert bytes.fromhex(value) not in data

    # ... while the same file, decrypted with the key, does hold the records and the keys: the search above
    # looked in the right place.
    with open(made["path"], "rb") as source:
        reader = format.Reader(source, bytes.fromhex(made["key"]))
        chunks = reader.chunks()
        manifest = json.loads(next(chunks))
        archive = b"".join(chunks)
    assert manifest["secrets"] == made["keys"]
    script = subprocess.run(["pg_restore", "--data-only", "--table=nationals", "-f", "-"], input=archive,
                            capture_output=True, check=True).stdout
    assert PEOPLE[0]["family_name"].encode() in script
    assert PEOPLE[0]["passport_number"].encode() not in script  # encrypted at rest, in the dump too


# --------------------------------------------------------------------- refused: nothing written

def assert_nothing_written(url: str, data_dir: Path) -> None:
    assert own_tables(url) == []
    assert not data_dir.exists()


def test_another_key_is_refused_before_anything_is_written(made, empty_database, tmp_path):
    result = restore_in_process(made["path"], empty_database, tmp_path / "keys", "5e" * 32)
    assert result.exit_code == 1
    assert "made with another key" in result.output and "Nothing was written" in result.output
    assert_nothing_written(empty_database, tmp_path / "keys")


def frames(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each frame, read from the layout the format documents (header 37 bytes; a frame is
    flags 1, length 4, nonce 12, then the ciphertext)."""
    spans, at = [], 37
    while at < len(data):
        length = struct.unpack(">I", data[at + 1:at + 5])[0]
        spans.append((at, at + 17 + length))
        at += 17 + length
    return spans


@pytest.mark.parametrize("where", ["salt", "manifest", "middle", "last byte", "final flag"])
def test_an_altered_byte_is_refused_before_anything_is_written(made, empty_database, tmp_path, where):
    data = bytearray(made["path"].read_bytes())
    spans = frames(bytes(data))
    position = {"salt": 20, "manifest": spans[0][0] + 30, "middle": len(data) // 2, "last byte": len(data) - 1,
                "final flag": spans[-2][0]}[where]
    data[position] ^= 0x01  # one bit; the "final flag" one marks the last-but-one chunk final
    altered = tmp_path / "altered.sagip"
    altered.write_bytes(bytes(data))
    result = restore_in_process(altered, empty_database, tmp_path / "keys", made["key"])
    assert result.exit_code == 1
    assert "fails authentication: the file was altered" in result.output, result.output
    assert_nothing_written(empty_database, tmp_path / "keys")


@pytest.mark.parametrize("cut", ["inside a chunk", "before the final chunk", "after the manifest", "header"])
def test_a_file_cut_short_is_refused_before_anything_is_written(made, empty_database, tmp_path, cut):
    data = made["path"].read_bytes()
    spans = frames(data)
    assert len(spans) > 3
    end = {"inside a chunk": spans[2][0] + 1000, "before the final chunk": spans[-1][0],
           "after the manifest": spans[0][1], "header": 30}[cut]
    cut_short = tmp_path / "cut.sagip"
    cut_short.write_bytes(data[:end])
    result = restore_in_process(cut_short, empty_database, tmp_path / "keys", made["key"])
    assert result.exit_code == 1
    assert "cut short" in result.output, result.output
    assert_nothing_written(empty_database, tmp_path / "keys")


def test_a_database_that_is_not_empty_is_refused(made, app, tmp_path):
    with owner_connection() as owner:
        before = owner.execute("SELECT count(*) FROM alembic_version").fetchone()
    result = restore_in_process(made["path"], TEST_DATABASE_URL, tmp_path / "keys", made["key"])
    assert result.exit_code == 1
    assert "the database is not empty" in result.output and "left as it was" in result.output
    assert not (tmp_path / "keys").exists()
    with owner_connection() as owner:
        assert owner.execute("SELECT count(*) FROM alembic_version").fetchone() == before


def test_a_data_folder_holding_other_keys_is_refused(made, empty_database, tmp_path):
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "audit.key").write_text("ab" * 32)
    result = restore_in_process(made["path"], empty_database, folder, made["key"])
    assert result.exit_code == 1
    assert "holds other keys than the backup's: REGISTRY_AUDIT_KEY" in result.output
    assert own_tables(empty_database) == [] and [p.name for p in folder.iterdir()] == ["audit.key"]


def test_production_wants_a_keys_file_and_writes_the_keys_there_only(made, fresh_database, tmp_path):
    environ = {"REGISTRY_ENV": "production", "REGISTRY_DATA_DIR": str(tmp_path / "data")}
    refused = restore_in_process(made["path"], fresh_database, tmp_path / "data", made["key"], env=environ)
    assert refused.exit_code == 1 and "give --keys-file FILE" in refused.output
    assert own_tables(fresh_database) == []

    keys_file = tmp_path / "restored-keys.env"
    env = {**environ, "DATABASE_URL": fresh_database, "REGISTRY_BACKUP_KEY": made["key"]}
    for name in config.SECRETS:
        env[name] = ""  # nothing of the test session's own keys
    result = run_cli("restore", str(made["path"]), "--keys-file", str(keys_file), env=env)
    assert result.returncode == 0, result.stderr
    assert f"audit trail intact: {made['sealed']} sealed entries verified" in result.stdout
    assert oct(keys_file.stat().st_mode)[-3:] == "600"
    lines = [line for line in keys_file.read_text().splitlines() if not line.startswith("#")]
    assert dict(line.split("=", 1) for line in lines) == made["keys"]
    assert not (tmp_path / "data").exists()
    for value in made["keys"].values():
        assert value not in result.stdout and value not in result.stderr


# --------------------------------------------------------------------- the backup command and its key

def test_backup_refuses_to_overwrite_a_file(app, db, tmp_path):
    existing = tmp_path / "old.sagip"
    existing.write_bytes(b"yesterday's backup")
    result = app.test_cli_runner().invoke(args=["backup", str(existing)])
    assert result.exit_code == 1 and "exists already" in result.output
    assert existing.read_bytes() == b"yesterday's backup"
    assert [p.name for p in tmp_path.iterdir()] == ["old.sagip"]  # no partial file left behind


def test_a_backup_made_with_keys_that_do_not_read_the_data_says_so(client, desk, db, tmp_path):
    register(client, desk)
    db.session.rollback()
    other_keys = make_app(REGISTRY_ENCRYPTION_KEYS="1:" + "77" * 32)
    with other_keys.app_context():
        result = other_keys.test_cli_runner().invoke(args=["backup", str(tmp_path / "useless.sagip")])
    assert result.exit_code == 0, result.output
    assert "warning: the service's keys do not read its data" in result.output
    assert "passport number does not decrypt" in result.output


def test_the_backup_key_is_generated_in_development_and_required_in_production(tmp_path):
    with pytest.raises(config.ConfigError, match="not set"):
        config.backup_key({"REGISTRY_DATA_DIR": str(tmp_path)}, create=False)  # a restore never invents one
    key = config.backup_key({"REGISTRY_DATA_DIR": str(tmp_path)}, create=True)
    assert config.backup_key({"REGISTRY_DATA_DIR": str(tmp_path)}, create=False) == key and len(key) == 32
    assert oct((tmp_path / "backup.key").stat().st_mode)[-3:] == "600"
    production = {"REGISTRY_ENV": "production", "REGISTRY_DATA_DIR": str(tmp_path / "prod")}
    with pytest.raises(config.ConfigError, match="REGISTRY_BACKUP_KEY is required"):
        config.backup_key(production, create=True)
    assert not (tmp_path / "prod").exists()
    assert config.backup_key({**production, "REGISTRY_BACKUP_KEY": "4d" * 32}, create=True) == bytes.fromhex("4d" * 32)
    for bad in ("4d" * 31, "zz" * 32, "4d" * 33):
        with pytest.raises(config.ConfigError, match="REGISTRY_BACKUP_KEY"):
            config.backup_key({**production, "REGISTRY_BACKUP_KEY": bad}, create=True)


def test_the_backup_key_must_differ_from_the_service_keys(app, db, tmp_path):
    from registry.backups.services import BackupRefused, check_backup_key
    audit_key = app.config["REGISTRY_AUDIT_KEY"]
    with pytest.raises(BackupRefused, match="must differ"):
        check_backup_key(audit_key, app.config)
    check_backup_key(bytes(32), app.config)


# --------------------------------------------------------------------- the file format

def encrypted(parts: list[bytes], key: bytes = b"k" * 32, chunk_bytes: int = 8) -> bytes:
    out = io.BytesIO()
    format.encrypt_stream(out, key, parts[0], io.BytesIO(b"".join(parts[1:])), chunk_bytes=chunk_bytes)
    return out.getvalue()


def read_all(data: bytes, key: bytes = b"k" * 32) -> list[bytes]:
    return list(format.Reader(io.BytesIO(data), key).chunks())


def test_chunks_read_back_in_order_and_the_last_bytes_are_in_the_final_chunk():
    data = encrypted([b"manifest", b"0123456789abcdefXY"])
    assert read_all(data) == [b"manifest", b"01234567", b"89abcdef", b"XY"]
    assert [data[start] for start, _ in frames(data)] == [0, 0, 0, 1]  # only the last is flagged final
    assert read_all(encrypted([b"m", b"01234567"])) == [b"m", b"01234567"]  # an exact multiple: no empty tail
    assert read_all(encrypted([b"m", b""])) == [b"m", b""]


def test_reordered_spliced_or_extended_chunks_are_refused():
    data = encrypted([b"manifest", b"0123456789abcdefXY"])
    spans = frames(data)
    pieces = [data[s:e] for s, e in spans]
    header = data[:spans[0][0]]
    with pytest.raises(format.Corrupted):  # two chunks swapped
        read_all(header + pieces[0] + pieces[2] + pieces[1] + pieces[3])
    other = encrypted([b"manifest", b"0123456789abcdefXY"])  # same key and content, another file
    other_pieces = [other[s:e] for s, e in frames(other)]
    with pytest.raises(format.Corrupted):  # a chunk of another backup
        read_all(header + pieces[0] + other_pieces[1] + pieces[2] + pieces[3])
    with pytest.raises(format.Corrupted, match="follows the final chunk"):
        read_all(data + pieces[3])
    with pytest.raises(format.Truncated):  # a middle chunk dropped, then cut: no final chunk
        read_all(header + pieces[0] + pieces[1] + pieces[2])


def test_the_header_names_a_wrong_key_and_refuses_what_is_no_backup():
    data = encrypted([b"manifest", b"data"])
    with pytest.raises(format.WrongKey, match="another key"):
        read_all(data, key=b"j" * 32)
    with pytest.raises(format.NotABackup):
        read_all(b"PGDMP" + data[5:])
    huge = bytearray(data)
    huge[33:37] = struct.pack(">I", 1 << 30)  # a header asking for 1 GB chunks is not believed
    with pytest.raises(format.Corrupted, match="chunk size"):
        read_all(bytes(huge))


def test_a_source_that_fails_at_its_end_leaves_no_final_chunk():
    out = io.BytesIO()

    def pg_dump_failed():
        raise RuntimeError("pg_dump failed")
    with pytest.raises(RuntimeError):
        format.encrypt_stream(out, b"k" * 32, b"m", io.BytesIO(b"0123456789"), chunk_bytes=4,
                              before_final=pg_dump_failed)
    with pytest.raises(format.Truncated):
        read_all(out.getvalue())
