"""The assignment (registry/rosters/assign.py) against a brute-force sequential greedy, on random data."""
from __future__ import annotations

import numpy as np
import pytest

from registry.rosters.assign import REASON_CODES, Members, Points, _priority_order, assign, great_circle_km


def random_roster(n: int, n_points: int, seed: int, capacity_scale: float):
    rng = np.random.default_rng(seed)
    household = np.repeat(np.arange(n), rng.integers(1, 5, n))[:n]  # households of 1-4, consecutive
    first = np.r_[0, np.flatnonzero(np.diff(household)) + 1]
    head = first[np.searchsorted(first, np.arange(n), side="right") - 1]
    lon = (55 + rng.normal(0, 1, n))[head] + rng.normal(0, 0.001, n)  # members within ~100 m of each other
    lat = (25 + rng.normal(0, 1, n))[head] + rng.normal(0, 0.001, n)
    members = Members(household_key=np.column_stack([household.astype(np.uint64), np.zeros(n, np.uint64)]),
                      priority=rng.integers(1, 5, n), zone_rank=np.where(rng.random(n) < 0.5, -1.0, 25.0),
                      distance_km=rng.random(n) * 50, lon=lon, lat=lat, located=rng.random(n) > 0.02)
    points = Points(lon=55 + rng.normal(0, 1, n_points), lat=25 + rng.normal(0, 1, n_points),
                    capacity=(rng.integers(1, 100, n_points) * capacity_scale).astype(int))
    return members, points


def brute_force(members: Members, points: Points, vehicle_capacity: int, max_km: float) -> dict[int, int]:
    """Households in priority order, each to the nearest point with room within reach of every member."""
    households: dict[int, list[int]] = {}
    for i, key in enumerate(members.household_key[:, 0].tolist()):
        households.setdefault(key, []).append(i)
    order = sorted(households.items(), key=lambda item: (
        min(members.priority[item[1]]), min(members.zone_rank[item[1]]), min(members.distance_km[item[1]]),
        item[0]))
    remaining = points.capacity.astype(int).copy()
    placed: dict[int, int] = {}
    for _, people in order:
        located = [i for i in people if members.located[i]]
        if not located or len(people) > vehicle_capacity:
            continue
        best = None
        for p in range(len(remaining)):
            if remaining[p] < len(people):
                continue
            distances = [float(great_circle_km(members.lon[i], members.lat[i], points.lon[p], points.lat[p]))
                         for i in located]
            if max(distances) <= max_km and (best is None or np.mean(distances) < best[0]):
                best = (np.mean(distances), p)
        if best:
            remaining[best[1]] -= len(people)
            placed.update({i: best[1] for i in people})
    return placed


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("ids", ["ascending", "shuffled"])
def test_the_windowed_greedy_is_the_sequential_greedy(seed, ids):
    members, points = random_roster(1500, 30, seed, capacity_scale=0.6)  # capacity short: priority decides
    if ids == "shuffled":  # households not in id order (the roster's read gives them in order)
        labels = np.random.default_rng(seed).permutation(1500).astype(np.uint64)
        members.household_key[:, 0] = labels[members.household_key[:, 0].astype(int)]
    result = assign(members, points, vehicle_capacity=10, max_distance_km=120)
    expected = brute_force(members, points, 10, 120)
    got = {i: int(p) for i, p in enumerate(result.point) if p >= 0}
    assert got == expected
    assert (np.bincount(result.point[result.point >= 0], minlength=30) <= points.capacity).all()
    unplaced = result.point < 0
    assert (result.reason[unplaced] > 0).all() and (result.reason[~unplaced] == 0).all()
    assert set(result.reason[unplaced].tolist()) <= set(REASON_CODES.values())


def test_vehicles_never_split_a_household_nor_overflow():
    members, points = random_roster(3000, 20, 5, capacity_scale=3)
    result = assign(members, points, vehicle_capacity=7, max_distance_km=300)
    placed = result.point >= 0
    seats = {}
    for i in np.flatnonzero(placed):
        seats.setdefault((int(result.point[i]), int(result.vehicle[i])), []).append(int(result.seat[i]))
    for taken in seats.values():
        assert sorted(taken) == list(range(1, len(taken) + 1)) and len(taken) <= 7
    household = members.household_key[:, 0]
    for key in np.unique(household[placed]):
        mine = household == key
        assert len({(int(p), int(v)) for p, v in zip(result.point[mine], result.vehicle[mine])}) == 1


def test_nothing_to_place_and_nowhere_to_go():
    members, points = random_roster(50, 3, 1, capacity_scale=1)
    none = Points(lon=np.zeros(0), lat=np.zeros(0), capacity=np.zeros(0, int))
    result = assign(members, none, vehicle_capacity=10, max_distance_km=100)
    assert (result.point == -1).all()
    located = members.located
    assert set(result.reason[located].tolist()) <= {REASON_CODES["no_assembly_points"],
                                                    REASON_CODES["location_unknown"],
                                                    REASON_CODES["household_larger_than_vehicle"]}
    empty = Members(household_key=np.zeros((0, 2), np.uint64), priority=np.zeros(0, int), zone_rank=np.zeros(0),
                    distance_km=np.zeros(0), lon=np.zeros(0), lat=np.zeros(0), located=np.zeros(0, bool))
    assert len(assign(empty, points, vehicle_capacity=10, max_distance_km=100).point) == 0


@pytest.mark.parametrize("ids", ["ascending", "shuffled", "sharing their first half"])
def test_the_priority_order_breaks_ties_by_household_id(ids):
    rng = np.random.default_rng(7)
    n = 5000
    high = np.sort(rng.integers(0, 2**63, n, dtype=np.uint64))
    low = rng.integers(0, 2**63, n, dtype=np.uint64)
    if ids == "shuffled":
        high = rng.permutation(high)
    elif ids == "sharing their first half":
        high[1::2] = high[::2]
        low[1::2] = low[::2] + np.uint64(1)
    priority, zone = rng.integers(1, 5, n), rng.choice([-1.0, 25.0, 100.0], n)
    distance = rng.choice([0.0, 1.5, 3.0], n)  # many ties
    keys = np.column_stack([high, low])
    expected = np.lexsort((low, high, distance, zone, priority))
    assert (_priority_order(keys, priority, zone, distance) == expected).all()


def test_threads_and_an_output_order_change_nothing_but_the_order(monkeypatch):
    """A large roster's arithmetic runs in threads and its per-member arrays come out in the order asked for
    (build asks for national id order): the same roster as one thread in the members' own order."""
    from registry.rosters import assign as assign_module
    members, points = random_roster(3000, 40, 11, capacity_scale=0.6)
    alone = assign(members, points, vehicle_capacity=10, max_distance_km=120)
    monkeypatch.setattr(assign_module, "THREADS", 3)
    monkeypatch.setattr(assign_module, "PARALLEL_FROM", 50)
    order = np.random.default_rng(5).permutation(3000)
    threaded = assign(members, points, vehicle_capacity=10, max_distance_km=120, output_order=order)
    for name in ("point", "vehicle", "seat", "distance_to_point_km", "reason", "rank", "priority"):
        assert np.array_equal(getattr(alone, name)[order], getattr(threaded, name), equal_nan=True), name
    assert np.array_equal(alone.assigned_per_point, threaded.assigned_per_point)
    assert np.array_equal(alone.vehicles_per_point, threaded.vehicles_per_point)
    assert (alone.point >= 0).sum() > 1000 and (alone.point < 0).any()
