"""Bulk import through a real Celery worker (SPEC §4.2)."""
from __future__ import annotations

import io
import time

import pytest
from openpyxl import Workbook

from registry.imports.rows import COLUMNS
from tests.conftest import count


def csv_bytes(rows: list[dict], columns=COLUMNS) -> bytes:
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join(f'"{row.get(c, "")}"' if "," in str(row.get(c, "")) else str(row.get(c, ""))
                              for c in columns))
    return ("\n".join(lines) + "\n").encode()


def row(**changes) -> dict:
    base = {"family_name": "Santos", "given_names": "Juan", "sex": "M", "date_of_birth": "1988-03-01",
            "nationality": "PH", "passport_number": "P5550001A", "phones": "+97450123456",
            "host_country": "QA", "city": "Doha", "occupation_isco": "7112", "legal_status": "documented",
            "lat": "25.2854", "lon": "51.531"}
    base.update(changes)
    return base


def stored(db, *columns) -> list[tuple]:
    """(decrypted passport number, *columns) of every stored national."""
    from sqlalchemy import text

    from registry.crypto import keyring
    ring = keyring()
    rows = db.session.execute(text(f"SELECT id, passport_ciphertext, {', '.join(columns)} FROM nationals")).all()
    return [(ring.decrypt("passport", row[0], row[1]),) + tuple(row[2:]) for row in rows]


def upload(client, headers, data: bytes, filename="workers.csv"):
    return client.post("/api/v1/imports", headers=headers,
                       data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")


def wait_for_job(client, headers, job_id, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout_s}s")


def test_good_rows_are_stored_and_bad_and_duplicate_rows_reported(client, desk, db, celery_worker):
    existing = client.post("/api/v1/imports", headers=desk)  # no file: refused, nothing queued
    assert existing.status_code == 422 and existing.get_json()["errors"]["file"]
    rows = [
        row(),                                                              # 2 good
        row(passport_number="P5550002A", phones="+97450123457;+639171234567", vulnerabilities="pregnant;minor",
            household_ref="H1"),                                            # 3 good
        row(passport_number="P5550003A", household_ref="H1", lat="", lon=""),  # 4 good, same household
        row(passport_number="P5550004A", nationality="XX"),                # 5 bad country
        row(passport_number="P5550005A", phones="12345"),                  # 6 bad phone
        row(passport_number="P5550006A", date_of_birth="2999-01-01"),      # 7 future birth
        row(passport_number="P5550007A", lat="95"),                        # 8 out of range
        row(passport_number="P5550008A", occupation_isco="9999"),          # 9 bad ISCO
        row(passport_number="P5550001A", family_name="Dup"),               # 10 duplicate within the file
        row(passport_number="P5550009A", family_name=""),                  # 11 missing required
    ]
    response = upload(client, desk, csv_bytes(rows))
    assert response.status_code == 202
    job_id = response.get_json()["job_id"]
    assert response.headers["Location"] == f"/api/v1/jobs/{job_id}"
    job = wait_for_job(client, desk, job_id)
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert (result["created"], result["rejected"], result["duplicates"]) == (3, 6, 1)
    assert {(e["row"], e["field"]) for e in result["errors"]} == {
        (5, "nationality"), (6, "phones"), (7, "date_of_birth"), (8, "lat"), (9, "occupation_isco"),
        (11, "family_name")}
    assert [d["row"] for d in result["duplicate_rows"]] == [10]
    assert count(db, "nationals") == 3 and count(db, "deployments") == 3
    households = sorted(stored(db, "household_id", "location_source", "source", "phones"))
    assert households[1][1] == households[2][1] != households[0][1]
    assert [h[2] for h in households] == ["gps", "gps", "geocoded_city"]  # row 4: Doha, no point
    assert {h[3] for h in households} == {"bulk_import"}
    assert households[1][4] == ["+97450123457", "+639171234567"]
    assert count(db, "import_files") == 0  # the upload (personal data) is gone once imported

    # The same file again: every good row is now a duplicate of the database, nothing changes.
    again = wait_for_job(client, desk, upload(client, desk, csv_bytes(rows)).get_json()["job_id"])
    assert (again["result"]["created"], again["result"]["duplicates"]) == (0, 4)
    assert all("existing_id" in d for d in again["result"]["duplicate_rows"] if d["row"] != 10)
    assert count(db, "nationals") == 3


def test_xlsx_first_sheet_is_imported(client, desk, db, celery_worker):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(COLUMNS))
    from datetime import date
    values = row(date_of_birth=date(1979, 5, 6), lat=25.2854, lon=51.531, occupation_isco=7112)
    sheet.append([values.get(c, None) for c in COLUMNS])
    buffer = io.BytesIO()
    workbook.save(buffer)
    job = wait_for_job(client, desk, upload(client, desk, buffer.getvalue(), "workers.xlsx").get_json()["job_id"])
    assert job["status"] == "succeeded" and job["result"]["created"] == 1, job
    assert count(db, "nationals") == 1


@pytest.mark.parametrize("data, code", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not-a-spreadsheet"),
    (b"PK\x03\x04not really a zip", "not-a-spreadsheet"),
    ("family_name,given_names,colour\nSantos,Juan,blue\n".encode(), "unknown-columns"),
    (b"family_name,given_names,sex,date_of_birth,nationality,host_country,sex\n", "repeated-columns"),
    (b"family_name,given_names,sex\nSantos,Juan,M\n", "missing-columns"),
    # A header that is not UTF-8 refuses the file (a Latin-1 data row only rejects that row: test_import_files).
    ("famil\xeda_name,given_names\nPe\xf1a,Juan\n".encode("latin-1"), "not-a-spreadsheet"),
])
def test_files_that_cannot_be_read_fail_the_job_with_a_clear_error(client, desk, db, celery_worker, data, code):
    job = wait_for_job(client, desk, upload(client, desk, data).get_json()["job_id"])
    assert job["status"] == "failed" and job["error"]["code"] == code, job
    assert job["error"]["message"]
    assert count(db, "nationals") == 0 and count(db, "import_files") == 0


def test_an_empty_upload_is_a_422(client, desk):
    response = upload(client, desk, b"")
    assert response.status_code == 422 and "file" in response.get_json()["errors"]


def test_template_lists_every_import_column(client, desk):
    response = client.get("/api/v1/imports/template.csv", headers=desk)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    header = response.get_data(as_text=True).splitlines()[0].split(",")
    assert tuple(header) == COLUMNS


def test_the_template_example_row_imports_cleanly(client, desk, db, celery_worker):
    template = client.get("/api/v1/imports/template.csv", headers=desk).get_data()
    job = wait_for_job(client, desk, upload(client, desk, template).get_json()["job_id"])
    assert job["result"]["created"] == 1 and job["result"]["rejected"] == 0, job


def test_a_job_is_visible_to_its_creator_and_admins_only(client, make_user, desk, admin, celery_worker):
    job_id = upload(client, desk, csv_bytes([row()])).get_json()["job_id"]
    wait_for_job(client, desk, job_id)
    _, other_desk = make_user("desk")
    assert client.get(f"/api/v1/jobs/{job_id}", headers=other_desk).status_code == 404
    assert client.get(f"/api/v1/jobs/{job_id}", headers=admin).status_code == 200


def test_semicolon_csv_and_blank_header_cells_are_read(client, desk, db, celery_worker):
    """European Excel writes ';'; a trailing separator leaves a blank header cell that names nothing."""
    data = csv_bytes([row()]).decode().replace(",", ";").replace("\n", ";\n", 1).encode()
    job = wait_for_job(client, desk, upload(client, desk, data).get_json()["job_id"])
    assert job["status"] == "succeeded" and job["result"]["created"] == 1, job


def test_phones_written_with_a_trunk_zero_are_stored_in_e164(client, desk, db, celery_worker):
    job = wait_for_job(client, desk, upload(client, desk, csv_bytes([row(phones="+63 (0) 917 123 4567")])).get_json()
                       ["job_id"])
    assert job["result"]["created"] == 1, job
    from sqlalchemy import text
    assert db.session.execute(text("SELECT phones FROM nationals")).scalar() == ["+639171234567"]


def test_rows_stored_in_several_batches_keep_households_duplicates_and_counts(
        client, desk, db, celery_worker, monkeypatch):
    # The worker thread runs in this process: small batches make a 7-row file span four of them.
    monkeypatch.setattr("registry.imports.services.BATCH_ROWS", 2)
    first = wait_for_job(client, desk, upload(client, desk, csv_bytes([row(passport_number="P7000005A")]))
                         .get_json()["job_id"])
    assert first["result"]["created"] == 1
    rows = [row(passport_number=f"P700000{n}A", household_ref="H9" if n in (1, 4) else "") for n in range(1, 5)]
    rows += [row(passport_number="P7000005A"),           # row 6: already registered (batch 3)
             row(passport_number="P7000001A"),           # row 7: same passport as row 2, two batches later
             row(passport_number="P7000006A", sex="Q")]  # row 8: rejected
    job = wait_for_job(client, desk, upload(client, desk, csv_bytes(rows)).get_json()["job_id"])
    result = job["result"]
    assert (result["created"], result["duplicates"], result["rejected"]) == (4, 2, 1), result
    assert [(d["row"], "existing_id" in d) for d in result["duplicate_rows"]] == [(6, True), (7, False)]
    assert count(db, "nationals") == 5 and count(db, "deployments") == 5 and count(db, "location_reports") == 5
    households = dict(stored(db, "household_id"))
    assert households["P7000001A"] == households["P7000004A"] != households["P7000002A"]


def test_a_database_error_in_a_later_batch_rolls_back_the_earlier_ones(client, desk, db, celery_worker,
                                                                      monkeypatch):
    monkeypatch.setattr("registry.imports.services.BATCH_ROWS", 2)
    # A constraint added for the test makes PostgreSQL refuse row 4, in the second batch, after the
    # first batch is already in the transaction.
    from tests.conftest import owner_connection
    with owner_connection() as owner:  # the application role may not change the schema
        owner.execute("ALTER TABLE deployments ADD CONSTRAINT test_no_kw CHECK (host_country <> 'KW')")
    try:
        rows = [row(passport_number="P7100001A"), row(passport_number="P7100002A"),
                row(passport_number="P7100003A", host_country="KW", city="Kuwait City", lat="", lon="")]
        job = wait_for_job(client, desk, upload(client, desk, csv_bytes(rows)).get_json()["job_id"])
    finally:
        with owner_connection() as owner:
            owner.execute("ALTER TABLE deployments DROP CONSTRAINT test_no_kw")
    assert job["status"] == "failed", job
    assert "P7100003A" not in str(job["error"])
    assert count(db, "nationals") == 0 and count(db, "deployments") == 0 and count(db, "location_reports") == 0


def test_points_are_checked_against_the_host_country_and_cities_geocoded(client, desk, db, celery_worker):
    rows = [
        row(passport_number="P8000001A"),                                           # 2 Doha, in Qatar
        row(passport_number="P8000002A", lat="51.531", lon="25.2854"),              # 3 swapped
        row(passport_number="P8000003A", lat="0", lon="0"),                         # 4 no fix
        row(passport_number="P8000004A", lat="24.7136", lon="46.6753"),             # 5 Riyadh, not Qatar
        row(passport_number="P8000005A", lat="-10", lon="80"),                      # 6 Indian Ocean
        row(passport_number="P8000006A", host_country="SA", city="Jiddah", lat="", lon=""),   # 7 geocoded
        row(passport_number="P8000007A", host_country="AE", city="Atlantis", lat="", lon=""),  # 8 not found
    ]
    job = wait_for_job(client, desk, upload(client, desk, csv_bytes(rows)).get_json()["job_id"])
    result = job["result"]
    assert (result["created"], result["rejected"]) == (3, 4), result
    messages = {e["row"]: e["message"] for e in result["errors"]}
    assert "swap" in messages[3] and "(0, 0)" in messages[4] and "Saudi Arabia" in messages[5]
    assert "sea" in messages[6]
    assert [(w["row"], w["field"]) for w in result["warnings"]] == [(8, "city")]
    located = {p: (source, round(lat, 1)) for p, source, lat in stored(db, "location_source", "ST_Y(location)")}
    assert located == {"P8000001A": ("gps", 25.3), "P8000006A": ("geocoded_city", 21.5),
                       "P8000007A": ("country_centroid", located["P8000007A"][1])}
    assert count(db, "location_reports") == 3


def _validator_children() -> list[int]:
    """Validator processes (python -m registry.imports.pool) whose parent is this process, still running."""
    import os
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == os.getpid() and b"registry.imports.pool" in command:
            found.append(int(entry))
    return found


def _record_validators(monkeypatch) -> list[list[int]]:
    """The pids of each job's validator processes, as they start (the real class, observed)."""
    from registry.imports.pool import ValidatorProcesses
    started: list[list[int]] = []
    start = ValidatorProcesses.__init__

    def recording(self, *args, **kwargs):
        start(self, *args, **kwargs)
        started.append(self.pids)

    monkeypatch.setattr(ValidatorProcesses, "__init__", recording)
    return started


def test_an_import_gives_the_same_result_with_one_process_and_with_two(app, client, desk, db, celery_worker,
                                                                       monkeypatch):
    """Rows checked by two validator processes, batch by batch, come back in file order: the same rejections,
    duplicates, warnings and households as when the job's process checks them all."""
    import os

    from tests.conftest import owner_connection
    monkeypatch.setattr("registry.imports.services.BATCH_ROWS", 2)  # 12 rows: six batches
    started = _record_validators(monkeypatch)
    rows = [row(passport_number="P7300001A", household_ref="H1"),                    # 2
            row(passport_number="P7300002A", sex="Q"),                               # 3 rejected
            row(passport_number="P7300003A", lat="24.7136", lon="46.6753"),          # 4 Riyadh, not Qatar
            row(passport_number="P7300004A", household_ref="H1", date_of_birth="1988-13-01"),  # 5 rejected
            row(passport_number="P7300005A", household_ref="H1", lat="", lon=""),   # 6 geocoded Doha
            row(passport_number="P7300001A", city="Nowhereville", lat="", lon=""),  # 7 same as row 2: no warning
            row(passport_number="P7300006A", city="Nowhereville", lat="", lon=""),  # 8 warning
            row(passport_number="P7300007A", household_ref="H2"),                    # 9
            row(passport_number="P7300003A"),                                        # 10 same as row 4
            row(passport_number="P7300008A", household_ref="H2", phones="12"),       # 11 rejected
            row(passport_number="P7300009A", household_ref="H2"),                    # 12
            row(passport_number="P7300010A", household_ref="H1")]                    # 13
    data = csv_bytes(rows)

    def imported(processes: int):
        monkeypatch.setitem(app.config, "REGISTRY_IMPORT_PROCESSES", processes)
        monkeypatch.setattr("registry.imports.pool.JOB_PROCESS_CHECKS", False)  # the children check every batch
        job = wait_for_job(client, desk, upload(client, desk, data).get_json()["job_id"])
        assert job["status"] == "succeeded", job
        households: dict = {}
        for passport, household, source in stored(db, "household_id", "location_source"):
            households.setdefault(household, set()).add((passport, source))
        db.session.rollback()
        with owner_connection() as owner:
            owner.execute("TRUNCATE nationals, deployments, location_reports, next_of_kin CASCADE")
        return job["result"], sorted(sorted(group) for group in households.values())

    one = imported(1)
    assert started == []  # the job's own process checked the rows
    two = imported(2)
    assert len(started) == 1 and len(started[0]) == 2 and os.getpid() not in started[0]
    result, households = one
    assert (result["created"], result["rejected"], result["duplicates"]) == (6, 4, 2), result
    assert [e["row"] for e in result["errors"]] == [3, 4, 5, 11]
    assert [(d["row"], d["message"]) for d in result["duplicate_rows"]] == [
        (7, "Same passport as row 2."), (10, "Same passport as row 4.")]
    assert [w["row"] for w in result["warnings"]] == [8]
    assert [("P7300001A", "gps"), ("P7300005A", "geocoded_city"), ("P7300010A", "gps")] in households
    assert [("P7300007A", "gps"), ("P7300009A", "gps")] in households
    assert two == one
    assert _validator_children() == []  # they exited with their job


def test_a_killed_validator_process_fails_the_job_with_a_reason(app, client, desk, db, celery_worker, monkeypatch):
    """A validator process SIGKILLed mid-import (the OOM killer, an operator) fails the job at once, nothing
    stored; the job's transaction is over (the suite's TRUNCATE does not wait on it) and no process is left."""
    import os
    import signal

    from registry.imports.pool import ValidatorProcesses
    from tests.conftest import owner_connection
    monkeypatch.setattr("registry.imports.services.BATCH_ROWS", 2)
    monkeypatch.setitem(app.config, "REGISTRY_IMPORT_PROCESSES", 2)
    killed: list[int] = []
    checked = ValidatorProcesses.checked

    def killing_after_the_first_batch(self, batches, checker):
        for number, answer in enumerate(checked(self, batches, checker)):
            yield answer
            if number == 0:
                killed.append(self.pids[1])
                os.kill(self.pids[1], signal.SIGKILL)

    monkeypatch.setattr(ValidatorProcesses, "checked", killing_after_the_first_batch)
    rows = [row(passport_number=f"P76{n:05d}A") for n in range(40)]  # 20 batches
    job = wait_for_job(client, desk, upload(client, desk, csv_bytes(rows)).get_json()["job_id"])
    assert killed and job["status"] == "failed", job
    assert job["error"]["code"] == "import-process-lost" and "start the import again" in job["error"]["message"]
    assert count(db, "nationals") == 0 and count(db, "import_files") == 0
    assert _validator_children() == []
    db.session.rollback()
    with owner_connection() as owner:  # what the suite's teardown does, bounded: it must not wait on the job
        owner.execute("SET lock_timeout = '10s'")
        owner.execute("TRUNCATE nationals, deployments, location_reports, next_of_kin, jobs CASCADE")


def test_validator_processes_exit_when_the_job_process_is_killed(app, tmp_path):
    """A worker SIGKILLed mid-import (no chance to end its validators) leaves no validator process behind:
    their stdin ends with it."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import registry
    script = tmp_path / "job_process.py"
    script.write_text(
        "import os, sys, time\n"
        "from registry.crypto import Keyring\n"
        "from registry.imports.batches import CheckSettings\n"
        "from registry.imports.pool import ValidatorProcesses\n"
        "from registry.imports.rows import COLUMNS\n"
        "ring = Keyring(1, {1: os.urandom(32)}, 1, {1: os.urandom(32)})\n"
        "validators = ValidatorProcesses(CheckSettings.new(list(COLUMNS), ring, 50.0), 2)\n"
        "print(*validators.pids, flush=True)\n"
        "time.sleep(600)\n")
    source = str(Path(registry.__file__).resolve().parent.parent)
    job_process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                                   env={**os.environ, "PYTHONPATH": source})
    try:
        pids = [int(pid) for pid in job_process.stdout.readline().split()]
        assert len(pids) == 2 and all(_running(pid) for pid in pids)
    finally:
        os.kill(job_process.pid, signal.SIGKILL)
        job_process.wait()
    deadline = time.monotonic() + 30
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_running(pid) for pid in pids)


def _running(pid: int) -> bool:
    """Running (a process that exited but is not reaped yet by init is a zombie: not running)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
