"""Harmonised imports (SPEC §11): country names and occupation titles in an import file become codes, or row
errors naming the value and the closest candidates; good rows still import. Through the real worker."""
from __future__ import annotations

from sqlalchemy import text

from registry.imports.rows import COLUMNS
from tests.conftest import count
from tests.test_imports import csv_bytes, row, upload, wait_for_job


def saudi(passport: str, **changes) -> dict:
    """A row in Saudi Arabia without a point (the city, or the country's reference point, locates it)."""
    return row(**{"passport_number": passport, "city": "Riyadh", "lat": "", "lon": "", "occupation_isco": "",
                  **changes})


def stored_codes(db) -> dict[str, tuple]:
    """family name → (nationality, host country, ISCO code) of every stored national."""
    rows = db.session.execute(text(
        "SELECT n.family_name, n.nationality, d.host_country, d.occupation_isco, n.jurisdiction_country "
        "FROM nationals n JOIN deployments d ON d.national_id = n.id")).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_names_and_titles_are_mapped_and_unsure_values_refused_with_candidates(client, desk, db, celery_worker):
    assert "occupation" in COLUMNS and COLUMNS.index("occupation") < COLUMNS.index("occupation_isco")
    rows = [
        saudi("P6000001A", family_name="Name", host_country="Saudi Arabia", occupation="kasambahay"),      # 2
        saudi("P6000002A", family_name="Abbrev", host_country="KSA", occupation="Domestic Helper (DH)"),   # 3
        saudi("P6000003A", family_name="Arabic", host_country="السعودية", occupation="خادمة"),            # 4
        saudi("P6000004A", family_name="Typo", host_country="Saudia Arabya", occupation="caregver",
              nationality="Pilipinas"),                                                                    # 5
        saudi("P6000005A", family_name="Unsure", host_country="Austrlia"),                                 # 6
        saudi("P6000006A", family_name="Unknown", host_country="Xyzland"),                                 # 7
        saudi("P6000007A", family_name="Ambiguous", occupation="driver", host_country="SA"),               # 8
        saudi("P6000008A", family_name="Disagree", occupation="caregiver", occupation_isco="9111",
              host_country="SA"),                                                                          # 9
        saudi("P6000009A", family_name="Both", occupation="nurse", occupation_isco="2221", host_country="sa"),  # 10
        row(passport_number="P6000010A", family_name="Coded"),                                            # 11 QA
        saudi("P6000011A", family_name="NotJob", occupation="OFW", host_country="Saudi"),                  # 12
    ]
    job = wait_for_job(client, desk, upload(client, desk, csv_bytes(rows)).get_json()["job_id"])
    assert job["status"] == "succeeded", job
    result = job["result"]
    errors = {(e["row"], e["field"]): e["message"] for e in result["errors"]}
    assert set(errors) == {(6, "host_country"), (7, "host_country"), (8, "occupation"), (9, "occupation"),
                           (12, "occupation")}, errors
    assert (result["created"], result["rejected"]) == (6, 5)

    # Refusals name the value and the closest candidates; nothing is guessed.
    assert "'Austrlia'" in errors[6, "host_country"]
    assert "AU (Australia)" in errors[6, "host_country"] and "AT (Austria)" in errors[6, "host_country"]
    assert "'Xyzland'" in errors[7, "host_country"] and "closest" in errors[7, "host_country"]
    assert "'driver'" in errors[8, "occupation"] and "8322" in errors[8, "occupation"]
    assert "5322" in errors[9, "occupation"] and "9111" in errors[9, "occupation"]
    assert "not an occupation" in errors[12, "occupation"]

    codes = stored_codes(db)
    for name in ("Name", "Abbrev", "Arabic"):
        assert codes[name] == ("PH", "SA", "9111", "SA"), name
    assert codes["Typo"] == ("PH", "SA", "5322", "SA")
    assert codes["Both"] == ("PH", "SA", "2221", "SA")
    assert codes["Coded"] == ("PH", "QA", "7112", "QA")
    assert count(db, "nationals") == 6


def test_a_file_without_the_occupation_column_still_imports(client, desk, db, celery_worker):
    columns = tuple(c for c in COLUMNS if c != "occupation")
    data = csv_bytes([saudi("P6100001A", family_name="Old", host_country="Kingdom of Saudi Arabia",
                            occupation_isco="5322")], columns=columns)
    job = wait_for_job(client, desk, upload(client, desk, data).get_json()["job_id"])
    assert job["status"] == "succeeded" and job["result"]["created"] == 1, job
    assert stored_codes(db)["Old"] == ("PH", "SA", "5322", "SA")


def test_the_api_stays_strict_about_country_codes(client, desk):
    """Registration through the API takes codes only (a client has the code lists); imports are lenient."""
    from tests.conftest import national_body
    body = national_body(deployment={"host_country": "Saudi Arabia", "city": "Riyadh"})
    response = client.post("/api/v1/nationals", json=body, headers=desk)
    assert response.status_code == 422
    assert "host_country" in str(response.get_json()["errors"])
