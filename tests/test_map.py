"""``GET /api/v1/map/nationals``: clusters per view counted in PostGIS, exact for filters and jurisdiction."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.test_crises import register

MAP = "/api/v1/map/nationals"
WORLD = "-180,-85,180,85"
DOHA = (25.2854, 51.5310)


def view(client, headers, bbox=WORLD, zoom=3, **filters):
    response = client.get(MAP, query_string={"bbox": bbox, "zoom": zoom, **filters}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def counted(answer) -> int:
    return sum(c["count"] for c in answer["clusters"]) + len(answer["points"])


@pytest.fixture
def world(client, desk, db):
    """Five in Dubai (AE), two in Doha (QA), one in Fiji east of the antimeridian."""
    ids = {"AE": [register(client, desk, 25.2048 + i * 0.01, 55.2708, passport_number=f"P20000{i}1A")
                  for i in range(5)],
           "QA": [register(client, desk, *DOHA, host="QA", passport_number=f"P30000{i}1A", vulnerabilities=[])
                  for i in range(2)],
           "FJ": [register(client, desk, -16.85, -179.95, host="FJ", passport_number="P4000001A")]}
    return ids


def test_counts_add_up_to_the_total_at_every_zoom(client, admin, world):
    for zoom in (0, 2, 3):
        answer = view(client, admin, zoom=zoom)
        assert answer["total"] == 8 == counted(answer), (zoom, answer)
    gulf = "50,20,60,30"
    for zoom in (6, 8):
        answer = view(client, admin, gulf, zoom)
        assert answer["total"] == 7 == counted(answer)
    assert view(client, admin, "54.9,24.9,55.6,25.5", 10)["total"] == 5


def test_clusters_at_low_zoom_points_with_ids_at_high_zoom(client, admin, world):
    low = view(client, admin, "50,20,60,30", 6)
    assert low["points"] == [] and sorted(c["count"] for c in low["clusters"]) == [2, 5]
    dubai = next(c for c in low["clusters"] if c["count"] == 5)
    assert 25.2 < dubai["lat"] < 25.25 and abs(dubai["lon"] - 55.2708) < 1e-4  # the mean of its people
    high = view(client, admin, "55.2,25.17,55.35,25.28", 14)
    assert {p["id"] for p in high["points"]} == set(world["AE"]) and high["clusters"] == []
    assert set(high["points"][0]) == {"id", "lat", "lon"}  # no names
    doha = view(client, admin, "51.45,25.2,51.6,25.35", 14)  # two people at one place: a cluster, no ids
    assert doha["points"] == [] and doha["clusters"][0]["count"] == 2
    street = view(client, admin, "55.26,25.20,55.28,25.21", 17)  # beyond the grid: straight from nationals
    assert [p["id"] for p in street["points"]] == [world["AE"][0]]


def test_antimeridian_box(client, admin, world):
    answer = view(client, admin, "170,-25,-170,-10", 6)
    assert answer["total"] == 1 and -180 <= answer["clusters"][0]["lon"] < -179.9
    assert view(client, admin, "-170,-25,170,-10", 6)["total"] == 0  # the other way round: not Fiji's side


def test_filters_narrow(client, admin, desk, world):
    assert view(client, admin, vulnerability="pregnant")["total"] == 6  # national_body's default: pregnant
    assert view(client, admin, vulnerability="disability")["total"] == 0
    response = client.patch(f"/api/v1/nationals/{world['AE'][0]}", json={"status": "returned"}, headers=desk)
    assert response.status_code == 200, response.get_json()
    assert view(client, admin, status="returned")["total"] == 1
    assert view(client, admin, status="abroad")["total"] == 7
    register(client, desk, None, None, host="AE", deployment={"city": "Dubai"}, passport_number="P5000001A")
    assert view(client, admin, certainty="possible")["total"] == 1  # geocoded city
    assert view(client, admin, certainty="high")["total"] == 8
    assert view(client, admin, certainty="high", status="abroad", vulnerability="pregnant")["total"] == 5


def test_an_embassy_officer_counts_only_their_jurisdiction(client, make_user, world):
    _, embassy = make_user("embassy", ["QA"])
    answer = view(client, embassy, "50,20,60,30", 6)  # Dubai's five are in the box
    assert answer["total"] == 2 == counted(answer)
    assert view(client, embassy)["total"] == 2
    dubai = view(client, embassy, "55.2,25.17,55.35,25.28", 14)
    assert (dubai["total"], dubai["clusters"], dubai["points"]) == (0, [], [])
    assert view(client, embassy, "55.26,25.20,55.28,25.21", 17)["total"] == 0


@pytest.mark.parametrize("query, field", [
    ({"zoom": 3}, "bbox"), ({"bbox": WORLD}, "zoom"), ({"bbox": "1,2,3", "zoom": 3}, "bbox"),
    ({"bbox": "a,b,c,d", "zoom": 3}, "bbox"), ({"bbox": "0,10,5,5", "zoom": 3}, "bbox"),
    ({"bbox": "0,-95,5,5", "zoom": 3}, "bbox"), ({"bbox": "0,0,190,5", "zoom": 3}, "bbox"),
    ({"bbox": "5,0,5,5", "zoom": 3}, "bbox"), ({"bbox": "nan,0,5,5", "zoom": 3}, "bbox"),
    ({"bbox": WORLD, "zoom": 19}, "zoom"), ({"bbox": WORLD, "zoom": -1}, "zoom"), ({"bbox": WORLD, "zoom": "x"}, "zoom"),
    ({"bbox": WORLD, "zoom": 10}, "bbox"),  # the world at zoom 10: too many cells
    ({"bbox": WORLD, "zoom": 3, "status": "lost"}, "status"), ({"bbox": WORLD, "zoom": 3, "certainty": "x"}, "certainty"),
    ({"bbox": WORLD, "zoom": 3, "colour": "red"}, "colour"),
])
def test_bad_parameters_are_422_with_the_field(client, admin, query, field):
    response = client.get(MAP, query_string=query, headers=admin)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


@pytest.mark.parametrize("role", ["desk", "auditor"])
def test_roles_without_map_read_are_refused(client, make_user, role):
    _, headers = make_user(role)
    assert client.get(MAP, query_string={"bbox": WORLD, "zoom": 3}, headers=headers).status_code == 403


def test_a_coordinator_may_not_filter_by_vulnerability(client, make_user):
    _, coordinator = make_user("coordinator")
    assert view(client, coordinator)["total"] == 0
    response = client.get(MAP, query_string={"bbox": WORLD, "zoom": 3, "vulnerability": "pregnant"},
                          headers=coordinator)
    assert response.status_code == 403


RECOUNT = text("""
SELECT z, floor(ST_X(location) / (90.0 / 2 ^ z))::int, floor(ST_Y(location) / (90.0 / 2 ^ z))::int,
       jurisdiction_country, status, vulnerabilities, count(*)
FROM nationals CROSS JOIN generate_series(0, 16) z
WHERE erased_at IS NULL AND location IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6
""")
GRID = text("""
SELECT zoom, cx, cy, jurisdiction_country, status, vulnerability_mask, sum(n)
FROM (SELECT * FROM map_cells UNION ALL SELECT * FROM map_cell_changes) AS cells
GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) <> 0
""")


def _grid_matches_a_recount(db, *, folded: bool = False):
    """The grid (folded cells and changes since) counts what a recount of nationals counts; ``folded``: and
    the worker's fold left no change behind and no emptied cell."""
    from registry.nationals.models import VULNERABILITIES
    db.session.rollback()
    recount = {(*row[:5], sum(1 << VULNERABILITIES.index(v) for v in row[5])): row[6]
               for row in db.session.execute(RECOUNT)}
    grid = {tuple(row[:6]): row[6] for row in db.session.execute(GRID)}
    assert grid == recount
    if folded:
        assert db.session.execute(text("SELECT count(*) FROM map_cell_changes")).scalar() == 0
        assert db.session.execute(text("SELECT count(*) FROM map_cells WHERE n <= 0")).scalar() == 0


def _fold_by_the_worker(app, db, timeout_s: float = 60) -> None:
    """What the worker's beat does every REGISTRY_MAP_FOLD_SECONDS, sent to the real worker (through this
    app's Celery: another test's app may be the default one); waits for it."""
    import time

    app.extensions["celery"].send_task("maps.fold_cell_changes")
    deadline = time.monotonic() + timeout_s
    while db.session.execute(text("SELECT count(*) FROM map_cell_changes")).scalar():
        db.session.rollback()
        assert time.monotonic() < deadline, "the worker did not fold the map's changes"
        time.sleep(0.1)
    db.session.rollback()


def test_the_grid_stays_exact_after_register_update_locate_and_erase(client, desk, admin, db, world):
    _grid_matches_a_recount(db)
    moved = world["AE"][1]
    response = client.post(f"/api/v1/nationals/{moved}/locations", headers=desk,
                           json={"lat": 24.4539, "lon": 54.3773, "precision_m": 30})
    assert response.status_code == 201, response.get_json()
    response = client.patch(f"/api/v1/nationals/{world['QA'][0]}", headers=desk,
                            json={"vulnerabilities": ["disability", "elderly"], "status": "missing"})
    assert response.status_code == 200, response.get_json()
    _grid_matches_a_recount(db)
    assert view(client, admin, vulnerability="elderly")["total"] == 1
    assert client.delete(f"/api/v1/nationals/{world['FJ'][0]}", headers=admin).status_code == 204
    assert client.delete(f"/api/v1/nationals/{world['AE'][2]}", headers=admin).status_code == 204
    _grid_matches_a_recount(db)
    answer = view(client, admin)
    assert answer["total"] == 6 == counted(answer)
    assert view(client, admin, "170,-25,-170,-10", 6)["total"] == 0
    # A statement that changes no placed column leaves the grid alone; deleting rows takes them away.
    db.session.execute(text("UPDATE nationals SET updated_at = now()"))
    db.session.commit()
    _grid_matches_a_recount(db)
    db.session.execute(text("DELETE FROM nationals WHERE jurisdiction_country = 'QA'"))
    db.session.commit()
    _grid_matches_a_recount(db)
    assert view(client, admin)["total"] == 4


def test_the_worker_folds_the_changes_and_views_count_the_same(app, client, desk, admin, db, world,
                                                               celery_worker):
    before = view(client, admin, "50,20,60,30", 6)
    assert db.session.execute(text("SELECT count(*) FROM map_cell_changes")).scalar() > 0
    _fold_by_the_worker(app, db)
    _grid_matches_a_recount(db, folded=True)
    assert view(client, admin, "50,20,60,30", 6) == before
    # A move after the fold: the view counts the folded cells and the new changes together, then folded.
    response = client.post(f"/api/v1/nationals/{world['AE'][0]}/locations", headers=desk,
                           json={"lat": 24.4539, "lon": 54.3773, "precision_m": 30})
    assert response.status_code == 201, response.get_json()
    client.delete(f"/api/v1/nationals/{world['QA'][0]}", headers=admin)
    moved = view(client, admin, "50,20,60,30", 6)
    assert moved["total"] == 6 and sorted(c["count"] for c in moved["clusters"]) == [1, 1, 4]
    _fold_by_the_worker(app, db)
    _grid_matches_a_recount(db, folded=True)
    assert view(client, admin, "50,20,60,30", 6) == moved


def test_a_writer_never_waits_for_another_writers_open_transaction(client, admin, db, world):
    """Two writers in one country (an import still running, a desk registering) share every coarse cell of
    the grid: neither may wait for the other's commit (with the grid upserted by the triggers, the second
    waited: here, its lock timeout)."""
    import psycopg

    from tests.conftest import TEST_DATABASE_URL
    with psycopg.connect(TEST_DATABASE_URL) as importing:  # a transaction still open, having moved people
        importing.execute("UPDATE nationals SET status = 'missing' WHERE id = ANY(%s)", (world["AE"][:3],))
        with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as desk:
            desk.execute("SET lock_timeout = '3s'")
            desk.execute("UPDATE nationals SET status = 'missing' WHERE id = %s", (world["AE"][3],))
        importing.rollback()
    _grid_matches_a_recount(db)
    assert view(client, admin, status="missing")["total"] == 1
    assert view(client, admin)["total"] == 8


def test_the_migration_and_the_code_agree_on_the_grid():
    import importlib.util
    from pathlib import Path

    from registry.maps import grid
    path = next(Path(__file__).resolve().parents[1].glob("migrations/versions/*_map_cells.py"))
    spec = importlib.util.spec_from_file_location("map_cells_migration", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    from registry.nationals.models import VULNERABILITIES
    assert migration.MAX_GRID_ZOOM == grid.MAX_GRID_ZOOM and migration.VULNERABILITIES == VULNERABILITIES
    assert grid.cell_size(14) == 90.0 / 16384


def test_the_reading_functions_keep_to_the_database_scope(world):
    """``map_points`` and ``map_cells_live`` read past row-level security (for the GiST index): they apply
    the transaction's scope themselves, even when the caller's reach says everywhere."""
    from tests.conftest import owner_connection
    size = 90.0 / 2 ** 16
    everywhere = (None, None, None, None)
    with owner_connection() as conn, conn.transaction():
        xs, ys = conn.execute("SELECT array_agg(x), array_agg(y) FROM (SELECT DISTINCT floor(ST_X(location) / %s)::int "
                              "AS x, floor(ST_Y(location) / %s)::int AS y FROM nationals) c", (size, size)).fetchone()
        conn.execute("SET LOCAL ROLE sagip_app")
        for scope, expected in (("*", 8), ("QA", 2), ("", 0)):
            conn.execute("SELECT set_config('sagip.scope', %s, true)", (scope,))
            live = conn.execute("SELECT coalesce(sum(people), 0) FROM map_cells_live(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                                (1.0, [-180], [179], -90, 89, *everywhere)).fetchone()[0]
            points = conn.execute("SELECT count(DISTINCT national_id) FROM map_points(%s, %s, %s, %s, %s, %s, %s)",
                                  (size, xs, ys, *everywhere)).fetchone()[0]
            assert live == points == expected, scope
        conn.execute("SELECT set_config('sagip.scope', 'QA', true)")
        assert conn.execute("SELECT count(*) FROM map_cells_live(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                            (1.0, [-180], [179], -90, 89, ["AE"], None, None, None)).fetchone()[0] == 0
