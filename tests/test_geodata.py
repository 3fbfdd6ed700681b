"""Geography (SPEC §4): the offline gazetteer, /geocode, country boundaries and the point checks."""
from __future__ import annotations

import csv
import gzip
import math

import pytest
from shapely.geometry import Point, shape
from sqlalchemy import text

from registry.geocoding import GAZETTEER, gazetteer, place_key
from tests.conftest import count, national_body

NEAR_KM = 30

# (host country, what a form says, the city's real latitude and longitude)
CITIES = [
    ("AE", "Dubai", 25.2048, 55.2708), ("AE", "دبي", 25.2048, 55.2708),
    ("AE", "ABU DHABI", 24.4539, 54.3773), ("AE", "abudhabi", 24.4539, 54.3773),
    ("AE", "Sharjah", 25.3463, 55.4209), ("AE", "الشارقة", 25.3463, 55.4209),
    ("SA", "Riyadh", 24.7136, 46.6753), ("SA", "الرياض", 24.7136, 46.6753),
    ("SA", "Jiddah", 21.4858, 39.1925), ("SA", "Jeddah", 21.4858, 39.1925),
    ("SA", "Makkah", 21.3891, 39.8579), ("SA", "Mecca", 21.3891, 39.8579),
    ("SA", "Dammam", 26.4207, 50.0888), ("SA", "Medina", 24.5247, 39.5692),
    ("KW", "Kuwait City", 29.3759, 47.9774), ("KW", "Al Kuwayt", 29.3759, 47.9774),
    ("QA", "Doha", 25.2854, 51.5310), ("QA", "Ad Dawhah", 25.2854, 51.5310),
    ("BH", "Manama", 26.2285, 50.5860), ("BH", "المنامة", 26.2285, 50.5860),
    ("OM", "Muscat", 23.5880, 58.3829), ("OM", "Masqat", 23.5880, 58.3829),
    ("HK", "Hong Kong", 22.3193, 114.1694), ("HK", "香港", 22.3193, 114.1694),
    ("SG", "Singapore", 1.3521, 103.8198),
    ("TW", "Taipei", 25.0330, 121.5654), ("TW", "臺北", 25.0330, 121.5654), ("TW", "Kaohsiung", 22.6273, 120.3014),
    ("JP", "Tokyo", 35.6762, 139.6503), ("JP", "東京", 35.6762, 139.6503), ("JP", "東京都", 35.6762, 139.6503),
    ("JP", "Osaka", 34.6937, 135.5023),
    ("KR", "Seoul", 37.5665, 126.9780), ("KR", "서울", 37.5665, 126.9780), ("KR", "Pusan", 35.1796, 129.0756),
    ("MY", "Kuala Lumpur", 3.1390, 101.6869), ("MY", "Johor Bahru", 1.4927, 103.7414),
    ("CN", "Beijing", 39.9042, 116.4074), ("CN", "北京", 39.9042, 116.4074), ("CN", "Shanghai", 31.2304, 121.4737),
    ("IT", "Milano", 45.4642, 9.1900), ("IT", "Roma", 41.9028, 12.4964),
    ("ES", "Málaga", 36.7213, -4.4214), ("ES", "Malaga", 36.7213, -4.4214), ("ES", "Madrid", 40.4168, -3.7038),
    ("GB", "London", 51.5074, -0.1278),
    ("DE", "München", 48.1351, 11.5820), ("DE", "Muenchen", 48.1351, 11.5820), ("DE", "Munich", 48.1351, 11.5820),
    ("DE", "Köln", 50.9375, 6.9603),
    ("FR", "Paris", 48.8566, 2.3522),
    ("US", "Los Angeles", 34.0522, -118.2437), ("US", "New York", 40.7128, -74.0060),
    ("CA", "Toronto", 43.6532, -79.3832), ("CA", "Montréal", 45.5017, -73.5673),
    ("CA", "Vancouver", 49.2827, -123.1207),
    ("BR", "São Paulo", -23.5505, -46.6333), ("BR", "Sao Paulo", -23.5505, -46.6333),
    ("BR", "Rio de Janeiro", -22.9068, -43.1729),
    ("LB", "Beirut", 33.8938, 35.5018), ("LB", "Bayrut", 33.8938, 35.5018),
    ("IL", "Tel Aviv", 32.0853, 34.7818), ("IL", "תל אביב", 32.0853, 34.7818),
    ("JO", "Amman", 31.9454, 35.9284), ("JO", "عمان", 31.9454, 35.9284),
]
SPRINGFIELD_MO, SPRINGFIELD_IL = (37.2090, -93.2923), (39.7817, -89.6501)
DUBAI, DOHA, RIYADH = (55.2708, 25.2048), (51.531, 25.2854), (46.6753, 24.7136)  # (lon, lat)
FIJI_EAST, FIJI_WEST = (179.97, -16.88), (-179.93, -16.82)  # Vanua Levu / Taveuni, either side of 180°


def km_between(lat1, lon1, lat2, lon2) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def register(client, headers, **changes):
    return client.post("/api/v1/nationals", json=national_body(**changes), headers=headers)


def geocode(client, headers, **params):
    return client.get("/api/v1/geocode", query_string=params, headers=headers)


# -- the gazetteer -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("country, query, lat, lon", CITIES, ids=[f"{c}-{q}" for c, q, _, _ in CITIES])
def test_gazetteer_finds_host_cities_by_any_common_name_within_30_km(country, query, lat, lon):
    match = gazetteer().lookup(country, query)
    assert match is not None and not match.fuzzy
    assert match.place.country == country
    assert km_between(match.place.lat, match.place.lon, lat, lon) < NEAR_KM, match.place


def test_names_in_other_spellings_find_the_same_place():
    same = [("SA", "Jiddah", "Jeddah"), ("SA", "Makkah", "Mecca"), ("KW", "Al Kuwayt", "Kuwait City"),
            ("IT", "Milano", "Milan"), ("DE", "München", "Munich"), ("AE", "ABU DHABI", "abudhabi"),
            ("JP", "東京", "Tokyo"), ("AE", "دبي", "Dubai")]
    for country, one, other in same:
        assert gazetteer().lookup(country, one).place == gazetteer().lookup(country, other).place, one


def test_a_misspelt_city_is_found_fuzzily_and_says_so():
    match = gazetteer().lookup("SA", "Riyahd")
    assert match.fuzzy and match.place.name == "Riyadh"


def test_an_ambiguous_name_goes_to_the_most_populous_place_and_lists_the_others():
    match = gazetteer().lookup("US", "Springfield")
    assert km_between(match.place.lat, match.place.lon, *SPRINGFIELD_MO) < NEAR_KM
    assert {"Illinois", "Massachusetts"} <= {p.admin1 for p in match.alternatives}
    assert all(p.population <= match.place.population for p in match.alternatives)


def test_an_admin1_hint_wins_over_population():
    match = gazetteer().lookup("US", "Springfield, Illinois")
    assert match.place.admin1 == "Illinois" and not match.fuzzy
    assert km_between(match.place.lat, match.place.lon, *SPRINGFIELD_IL) < NEAR_KM
    assert "Missouri" in {p.admin1 for p in match.alternatives}


def test_kuwait_in_arabic_script_finds_kuwait_city():
    """The article "ال" is written onto the word; "مدينة" ("city of") precedes the stored name."""
    match = gazetteer().lookup("KW", "الكويت")
    assert match is not None and match.place.name == "Kuwait City"


def test_a_region_given_as_its_iso_code_resolves_an_ambiguous_name():
    assert gazetteer().lookup("US", "Springfield, IL").place.admin1 == "Illinois"


def test_every_stored_key_is_in_the_current_normal_form():
    with gzip.open(GAZETTEER, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) > 20_000
    stale = [(row["name"], key) for row in rows for key in row["keys"].split("|") if key != place_key(key)]
    assert stale == []


# -- GET /api/v1/geocode -------------------------------------------------------------------------------------

@pytest.mark.parametrize("country, q, name", [("SA", "Jiddah", "Jeddah"), ("DE", "München", "Munich"),
                                              ("AE", "دبي", "Dubai"), ("JP", "東京都", "Tokyo")])
def test_geocode_answers_the_best_place_with_its_precision(client, desk, country, q, name):
    response = geocode(client, desk, country=country, q=q)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["query"], body["country"], body["fuzzy"], body["alternatives"]) == (q, country, False, [])
    match = body["match"]
    assert {"name", "admin1", "lat", "lon", "population", "precision_m", "source"} <= set(match)
    assert match["name"] == name and match["source"] == "geocoded_city" and match["population"] > 500_000
    assert 2000 <= match["precision_m"] <= 30000


def test_geocode_lists_the_alternatives_of_an_ambiguous_name(client, desk):
    body = geocode(client, desk, country="US", q="Springfield").get_json()
    assert body["match"]["admin1"] == "Missouri"
    assert {"Illinois", "Massachusetts"} <= {a["admin1"] for a in body["alternatives"]}
    assert all(a["source"] == "geocoded_city" for a in body["alternatives"])
    hinted = geocode(client, desk, country="US", q="Springfield, Illinois").get_json()
    assert km_between(hinted["match"]["lat"], hinted["match"]["lon"], *SPRINGFIELD_IL) < NEAR_KM


@pytest.mark.parametrize("params", [{"q": "Dubai"}, {"country": "AE"}, {"country": "AE", "q": ""},
                                    {"country": "XX", "q": "Dubai"}])
def test_geocode_without_a_known_country_or_a_place_is_a_422(client, desk, params):
    response = geocode(client, desk, **params)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"


def test_an_unknown_city_answers_the_country_point(client, desk):
    body = geocode(client, desk, country="AE", q="Atlantis").get_json()
    assert body["match"]["source"] == "country_centroid" and body["alternatives"] == []
    assert 22 < body["match"]["lat"] < 26.5 and 51 < body["match"]["lon"] < 56.5


def test_auditors_may_not_geocode(client, make_user):
    _, auditor = make_user("auditor")
    assert geocode(client, auditor, country="AE", q="Dubai").status_code == 403


# -- GET /api/v1/countries/{code} ----------------------------------------------------------------------------

def test_a_country_is_a_geojson_feature_containing_its_cities(client, desk):
    response = client.get("/api/v1/countries/AE", headers=desk)
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    feature = response.get_json()
    assert feature["type"] == "Feature" and feature["properties"]["code"] == "AE"
    assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    boundary = shape(feature["geometry"])
    assert boundary.contains(Point(*DUBAI)) and not boundary.contains(Point(*RIYADH))


def test_an_unknown_country_is_a_404(client, desk):
    assert client.get("/api/v1/countries/ZZ", headers=desk).status_code == 404


# -- points given at registration -----------------------------------------------------------------------------

def test_a_point_in_the_host_country_is_accepted(client, desk):
    response = register(client, desk, location={"lon": DUBAI[0], "lat": DUBAI[1]})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["location"]["source"] == "gps"


@pytest.mark.parametrize("lat, lon, says", [
    (55.27, 25.2, "swap"),  # Dubai with latitude and longitude exchanged
    (-10.0, 80.0, "sea"),  # the middle of the Indian Ocean
    (26.0, 53.0, "sea"),  # the Arabian Gulf, 90 km from any shore
    (0.0, 0.0, "(0, 0)"),  # no position fix
    (RIYADH[1], RIYADH[0], "Saudi Arabia"),
])
def test_an_implausible_point_is_refused_and_nothing_is_stored(client, desk, db, lat, lon, says):
    response = register(client, desk, location={"lat": lat, "lon": lon})
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "invalid-location" and says in problem["detail"], problem
    assert "lat" in problem["errors"]["location"]
    assert count(db, "nationals") == 0 and count(db, "location_reports") == 0


# -- the antimeridian and territories --------------------------------------------------------------------------

def test_fiji_is_found_on_both_sides_of_the_antimeridian(db):
    from registry.geo import check_in_country, country_at
    for lon, lat in (FIJI_EAST, FIJI_WEST):
        assert country_at(lon, lat, tolerance_m=0) == "FJ", (lon, lat)  # inside the boundary, no tolerance
        assert check_in_country(lon, lat, "FJ") is None


def test_countries_across_the_antimeridian_are_found_west_of_it(db):
    from registry.geo import country_at
    assert country_at(-175.0, 66.5, tolerance_m=0) == "RU"  # Chukotka
    assert country_at(-157.4, 1.87, tolerance_m=0) == "KI"  # Kiritimati


def test_a_registration_in_fiji_west_of_180_is_accepted(client, desk):
    response = register(client, desk, deployment={"host_country": "FJ", "city": "Taveuni"},
                        location={"lon": FIJI_WEST[0], "lat": FIJI_WEST[1]})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["location"]["lon"] == FIJI_WEST[0]


@pytest.mark.parametrize("lon, lat, country", [(33.6, 35.25, "CY"), (21.16, 42.66, "XK")],
                         ids=["northern-cyprus-is-cyprus", "kosovo-is-xk"])
def test_territories_without_their_own_iso_code_belong_to_a_deliberate_country(db, lon, lat, country):
    from registry.geo import country_at
    assert country_at(lon, lat, tolerance_m=0) == country


# -- location reports ------------------------------------------------------------------------------------------

def _jurisdiction(db, national_id):
    return db.session.execute(text("SELECT jurisdiction_country FROM nationals WHERE id = :id"),
                              {"id": national_id}).scalar()


def test_a_report_across_a_border_moves_the_national_to_that_embassy(client, desk, make_user, db):
    national = register(client, desk).get_json()
    url = f"/api/v1/nationals/{national['id']}"
    moved = client.post(f"{url}/locations", json={"lon": DOHA[0], "lat": DOHA[1]}, headers=desk)
    assert moved.status_code == 201, moved.get_json()
    assert moved.get_json()["location"]["lat"] == DOHA[1]
    assert _jurisdiction(db, national["id"]) == "QA"
    qatar, emirates = make_user("embassy", ["QA"])[1], make_user("embassy", ["AE"])[1]
    assert client.get(url, headers=qatar).status_code == 200
    assert client.get(url, headers=emirates).status_code == 404


def test_an_embassy_may_not_report_a_point_outside_its_jurisdiction(client, desk, make_user, db):
    national = register(client, desk).get_json()
    emirates = make_user("embassy", ["AE"])[1]
    response = client.post(f"/api/v1/nationals/{national['id']}/locations",
                           json={"lon": DOHA[0], "lat": DOHA[1]}, headers=emirates)
    assert response.status_code == 403
    assert count(db, "location_reports") == 1 and _jurisdiction(db, national["id"]) == "AE"
    read = client.get(f"/api/v1/nationals/{national['id']}", headers=emirates).get_json()
    assert read["location"]["lat"] == national["location"]["lat"]


def test_a_report_at_sea_is_refused(client, desk, db):
    national = register(client, desk).get_json()
    response = client.post(f"/api/v1/nationals/{national['id']}/locations",
                           json={"lon": 80.0, "lat": -10.0}, headers=desk)
    assert response.status_code == 422 and response.get_json()["code"] == "invalid-location"
    assert "sea" in response.get_json()["detail"]
    assert count(db, "location_reports") == 1 and _jurisdiction(db, national["id"]) == "AE"
