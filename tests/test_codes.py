"""Code lists (``GET /api/v1/codes/{list}``, SPEC §11) and the harmonisation rules behind imports."""
from __future__ import annotations

import pycountry
import pytest

from registry.codes import harmonise, normal, services
from registry.nationals.models import LEGAL_STATUSES, VULNERABILITIES
from registry.auth.models import ROLES
from registry.validation import COUNTRY_CODES, isco_codes


def get_list(client, headers, name):
    response = client.get(f"/api/v1/codes/{name}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert set(body) >= {"list", "items", "source", "version"} and body["list"] == name
    assert body["source"] and body["version"]
    assert all(isinstance(i["code"], str) and i["code"] and isinstance(i["name"], str) and i["name"]
               for i in body["items"])
    assert len({i["code"] for i in body["items"]}) == len(body["items"])
    return body


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_every_code_list(client, make_user, role):
    _, headers = make_user(role, ["AE"] if role == "embassy" else ())
    for name in services.LISTS:
        get_list(client, headers, name)


def test_countries_agree_with_pycountry_and_carry_aliases(client, desk):
    body = get_list(client, desk, "countries")
    items = {i["code"]: i for i in body["items"]}
    assert set(items) == COUNTRY_CODES  # pycountry's 249 and Kosovo
    for country in pycountry.countries:
        item = items[country.alpha_2]
        assert (item["alpha3"], item["numeric"]) == (country.alpha_3, country.numeric)
        assert item["name"] in (country.name, getattr(country, "common_name", None))
    assert {"KSA", "Saudi", "Arabie saoudite", "السعودية"} <= set(items["SA"]["aliases"])
    assert {"UAE", "Dubai"} <= set(items["AE"]["aliases"])
    assert "pycountry" in body["source"]


def test_regions_give_the_un_m49_groups_of_each_country(client, desk):
    body = get_list(client, desk, "regions")
    items = {i["code"]: i for i in body["items"]}
    assert set(items) == COUNTRY_CODES
    western_asia = {"region": {"code": "142", "name": "Asia"}, "subregion": {"code": "145", "name": "Western Asia"},
                    "intermediate_region": None}
    assert {k: items["SA"][k] for k in western_asia} == western_asia and items["SA"]["m49"] == "682"
    assert {k: items["AE"][k] for k in western_asia} == western_asia and items["AE"]["m49"] == "784"
    assert items["PH"]["subregion"] == {"code": "035", "name": "South-eastern Asia"} and items["PH"]["m49"] == "608"
    assert items["NG"]["intermediate_region"] == {"code": "011", "name": "Western Africa"}
    assert items["NG"]["subregion"]["code"] == "202"
    # Not listed apart by M49: placed where UN statistics count them, and saying so.
    assert items["TW"]["m49"] is None and items["TW"]["counted_under"]["code"] == "CN"
    assert items["TW"]["subregion"]["code"] == "030"
    assert all(i["region"] for i in items.values() if i["code"] != "AQ")  # Antarctica: no region
    assert {g["code"] for g in body["groups"]} >= {"001", "002", "019", "142", "150", "009", "145", "419"}
    assert services.region_of("SA")["subregion"]["code"] == "145"


def test_the_database_holds_the_same_regions_for_statistics(db):
    """country_regions (migration 0020) agrees with the regions list, country by country."""
    from sqlalchemy import text
    rows = db.session.execute(text("SELECT alpha2, m49, region_code, subregion_code, intermediate_region_code, "
                                   "subregion_name FROM country_regions")).all()
    assert {r[0] for r in rows} == COUNTRY_CODES
    for alpha2, m49, region, subregion, intermediate, _ in rows:
        item = services.region_of(alpha2)
        assert (m49, region, subregion, intermediate) == (
            item["m49"], *((item[level] or {}).get("code") for level in ("region", "subregion",
                                                                          "intermediate_region")))
    assert {r[0]: r[5] for r in rows}["SA"] == "Western Asia"


def test_occupations_are_the_isco_08_groups_with_titles(client, desk):
    items = {i["code"]: i for i in get_list(client, desk, "occupations")["items"]}
    assert set(items) == isco_codes() and len(items) == 619
    assert items["9111"]["name"] == "Domestic cleaners and helpers" and items["9111"]["parent"] == "911"
    assert items["5322"]["name"] == "Home-based personal care workers" and items["5322"]["level"] == 4
    assert items["9"]["level"] == 1 and items["9"]["parent"] is None
    assert {"domestic helper", "kasambahay", "DH"} <= set(items["9111"]["aliases"])
    assert "caregiver" in items["5322"]["aliases"]
    assert sum(i["level"] == 1 for i in items.values()) == 10


def test_languages_legal_statuses_and_vulnerabilities(client, desk):
    languages = {i["code"]: i for i in get_list(client, desk, "languages")["items"]}
    assert languages["tgl"]["name"] == "Tagalog" and languages["tgl"]["alpha2"] == "tl"
    assert languages["ara"]["alpha2"] == "ar" and len(languages) == len(list(pycountry.languages))
    assert [i["code"] for i in get_list(client, desk, "legal_statuses")["items"]] == list(LEGAL_STATUSES)
    assert [i["code"] for i in get_list(client, desk, "vulnerabilities")["items"]] == list(VULNERABILITIES)


@pytest.mark.parametrize("name", ["nope", "Countries", "country", "x" * 300, "..", "countries.json"])
def test_an_unknown_list_is_a_404_naming_the_lists(client, desk, name):
    response = client.get(f"/api/v1/codes/{name}", headers=desk)
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "unknown-code-list"
    for known in services.LISTS:
        assert known in problem["detail"]


def test_code_lists_need_a_token(client):
    assert client.get("/api/v1/codes/countries").status_code == 401


# -- harmonisation ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("written, expected", [
    ("  SAUDI   Arabia ", "saudi arabia"),
    ("Côte d’Ivoire", "cote divoire"),
    ("الإمارات", "امارات"),                     # hamza-on-alef, article
    ("السعوديّة", "سعوديه"),                    # shadda, taa marbuta
    ("الســعودية", "سعوديه"),                   # tatweel
    ("Trinidad & Tobago", "trinidad and tobago"),
    ("The Gambia", "gambia"),
])
def test_the_normal_form_ignores_case_accents_punctuation_and_arabic_variants(written, expected):
    assert normal.normal(written) == expected


def test_occupation_titles_are_compared_in_the_singular_and_masculine():
    assert normal.key("Caregivers", singular=True) == normal.key("care-giver", singular=True)
    assert normal.key("ممرضة", singular=True) == normal.key("ممرض", singular=True)
    assert normal.key("waitress", singular=True) == "waitress"


@pytest.mark.parametrize("written, code", [
    ("Saudi Arabia", "SA"), ("KSA", "SA"), ("Saudi", "SA"), ("Arabie saoudite", "SA"), ("السعودية", "SA"),
    ("sa", "SA"), ("SAU", "SA"), ("682", "SA"), ("UAE", "AE"), ("Dubai, UAE", "AE"), ("Phillipines", "PH"),
    ("Saudia Arabya", "SA"),   # two edits in an 11-letter key, nothing else near
])
def test_countries_as_agencies_write_them(written, code):
    assert harmonise.country(written) == code


@pytest.mark.parametrize("written, candidates", [
    ("Korea", {"KR", "KP"}),              # an ambiguous row of the table
    ("Congo", {"CG", "CD"}),
    ("Austrlia", {"AU", "AT"}),           # one edit from both: the margin rule refuses
    ("Slovania", {"SI", "SK"}),
    ("Qatr", {"QA"}),                     # a short key takes no typo
])
def test_ambiguous_or_unsure_countries_are_refused_with_their_candidates(written, candidates):
    with pytest.raises(harmonise.Unmapped) as refused:
        harmonise.country(written)
    assert candidates <= set(refused.value.match.candidates)
    message = str(refused.value)
    assert repr(written) in message and all(c in message for c in candidates)


@pytest.mark.parametrize("written, code", [
    ("domestic helper", "9111"), ("DH", "9111"), ("kasambahay", "9111"), ("Household Service Worker (HSW)", "9111"),
    ("خادمة", "9111"), ("caregiver", "5322"), ("Caregivers", "5322"), ("caregver", "5322"), ("9111", "9111"),
    ("waiter/waitress", "5131"),
])
def test_occupations_as_agencies_write_them(written, code):
    assert harmonise.occupation(written) == code


@pytest.mark.parametrize("written, fragment", [
    ("OFW", "not an occupation"), ("driver", "more than one occupation"), ("91111", "not an ISCO-08 code"),
    ("machanic", "7231"),
])
def test_what_is_not_an_occupation_is_refused(written, fragment):
    with pytest.raises(harmonise.Unmapped, match=fragment):
        harmonise.occupation(written)


def test_a_refused_value_holding_a_number_is_not_quoted():
    """A passport or phone number typed in the wrong column is not copied into the stored job result."""
    with pytest.raises(harmonise.Unmapped) as refused:
        harmonise.country("P1234567A")
    assert "1234567" not in str(refused.value)


def test_every_code_in_the_mapping_tables_exists():
    from registry.codes import sources
    for alias in sources.aliases("country_aliases.tsv") + sources.aliases("country_names_cldr.tsv"):
        assert set(alias.codes) <= COUNTRY_CODES, alias
    for alias in sources.aliases("occupation_aliases.tsv"):
        assert set(alias.codes) <= isco_codes(), alias
        assert len(alias.codes) == 1 or alias.note, f"a refused row says why: {alias}"
