"""Assigning households to assembly points and vehicles: greedy by priority, nearest point with room.

The rule (SPEC §4.3, the roster issue):

- Households are placed whole, in priority order: their most vulnerable
  member's class (medical or disability, pregnant, minor or elderly, the
  rest), then zone (inside before the rings, nearer rings first), then the
  distance to the area, then the household id (so equal inputs give equal
  output).
- Each takes the nearest considered point with room for all its members,
  within ``max_distance_km`` of every located member. Distances are great
  circles on the mean-radius sphere (R = 6371.0088 km, within 0.5% of the
  WGS 84 geodesic), so one KD-tree over unit vectors answers "nearest" in
  chord distance, which orders points exactly like the great circle does.
- Vehicles fill in the same order ("next fit"): a household that does not fit
  the point's current vehicle starts the next one, so the first vehicles carry
  the highest priorities and a household never rides in two vehicles.

This is exactly the sequential greedy, computed a window of households at a
time: every household of a window asks the tree of open points for its
nearest; the households before the first one that would not fit are all
placed at once (none of them could have been affected by another's choice);
that one is placed on its own by scanning every point; the tree is rebuilt
only when a point fills up. bench/roster.py measures it against PostGIS KNN.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from registry.rosters.models import UNASSIGNED_REASONS

EARTH_RADIUS_KM = 6371.0088
REASON_CODES = {reason: code for code, reason in enumerate(UNASSIGNED_REASONS, start=1)}
_WINDOW_MIN, _WINDOW_MAX = 64, 16384
# A large roster's arithmetic and nearest-point queries are spread over this many threads (numpy's loops and
# the KD-tree's queries release the GIL; while a worker assigns, PostgreSQL waits, so the machine's other
# cores are idle). Below PARALLEL_FROM rows a thread costs more than it saves.
THREADS = max(1, min(4, os.cpu_count() or 1))
PARALLEL_FROM = 200_000


def threads_for(n: int) -> int:
    """How many threads work on ``n`` rows (the KD-tree's ``workers``, the pieces of ``_in_parallel``, the
    read's gathers in ``build``): THREADS from PARALLEL_FROM rows, else one."""
    return THREADS if n >= PARALLEL_FROM else 1


def _in_parallel(work, n: int) -> None:
    """``work(lo, hi)`` over ``range(n)`` cut into ``threads_for(n)`` pieces run at once.
    Each piece writes its own rows of the output, so the result is the serial one, bit for bit."""
    pieces = threads_for(n)
    bounds = np.linspace(0, n, pieces + 1).astype(int)
    if pieces == 1:
        work(0, n)
        return
    with ThreadPoolExecutor(max_workers=pieces, thread_name_prefix="roster-assign") as pool:
        for done in [pool.submit(work, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]:
            done.result()



@dataclass
class Members:
    """The roster's nationals, sorted by household (members of one household are consecutive)."""

    household_key: np.ndarray   # (n, 2) uint64: the household id, for grouping and the final tie-break
    priority: np.ndarray        # (n,) int: 1 (medical or disability) … 4 (no vulnerability)
    zone_rank: np.ndarray       # (n,) float: -1 inside, else the ring's outer km
    distance_km: np.ndarray     # (n,) float: to the crisis area
    lon: np.ndarray             # (n,) float degrees; NaN when unknown
    lat: np.ndarray
    located: np.ndarray         # (n,) bool: a position better than the country's


@dataclass
class Points:
    lon: np.ndarray
    lat: np.ndarray
    capacity: np.ndarray        # persons


@dataclass
class Assignment:
    """Per member: the point index (-1 none), vehicle and seat (0 none), distance, reason code (0 none),
    rank in the roster's order and the household's priority."""

    point: np.ndarray
    vehicle: np.ndarray
    seat: np.ndarray
    distance_to_point_km: np.ndarray
    reason: np.ndarray
    rank: np.ndarray
    priority: np.ndarray
    assigned_per_point: np.ndarray
    vehicles_per_point: np.ndarray


def unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    out = np.empty((len(lon), 3))

    def piece(lo: int, hi: int) -> None:
        lon_r, lat_r = np.radians(lon[lo:hi]), np.radians(lat[lo:hi])
        cos_lat = np.cos(lat_r)
        out[lo:hi, 0] = cos_lat * np.cos(lon_r)
        out[lo:hi, 1] = cos_lat * np.sin(lon_r)
        out[lo:hi, 2] = np.sin(lat_r)

    _in_parallel(piece, len(lon))
    return out


def _chord_km_between(a: np.ndarray, a_rows: np.ndarray, b: np.ndarray, b_rows: np.ndarray) -> np.ndarray:
    """Great-circle km between unit vectors ``a[a_rows]`` and ``b[b_rows]``, through their chord (the rows
    are gathered piece by piece, in the threads)."""
    out = np.empty(len(a_rows))

    def piece(lo: int, hi: int) -> None:
        out[lo:hi] = chord_to_km(np.linalg.norm(a[a_rows[lo:hi]] - b[b_rows[lo:hi]], axis=1))

    _in_parallel(piece, len(a_rows))
    return out


def chord_to_km(chord):
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.minimum(np.asarray(chord) / 2.0, 1.0))


def km_to_chord(km: float) -> float:
    return float(2.0 * np.sin(min(km / EARTH_RADIUS_KM, np.pi) / 2.0))


def great_circle_km(lon1, lat1, lon2, lat2):
    """Great-circle distance on the mean-radius sphere (haversine); arrays or scalars."""
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def assign(members: Members, points: Points, *, vehicle_capacity: int, max_distance_km: float,
           output_order: np.ndarray | None = None) -> Assignment:
    """Place ``members``. The per-member arrays of the result follow ``output_order`` (member indices:
    ``build`` asks for national id order, the order its entries are written in) or the members' own."""
    n = len(members.priority)
    n_points = len(points.capacity)
    # ---- households
    key = members.household_key
    new_household = np.ones(n, dtype=bool)
    if n > 1:
        new_household[1:] = (key[1:] != key[:-1]).any(axis=1)
    starts = np.flatnonzero(new_household)
    sizes = np.diff(np.append(starts, n))
    n_households = len(starts)
    household_of = np.repeat(np.arange(n_households), sizes)
    h_priority = np.minimum.reduceat(members.priority, starts) if n else members.priority
    h_zone = np.minimum.reduceat(members.zone_rank, starts) if n else members.zone_rank
    h_distance = np.minimum.reduceat(members.distance_km, starts) if n else members.distance_km

    located = members.located & ~np.isnan(members.lon) & ~np.isnan(members.lat)
    vectors = unit_vectors(np.where(located, members.lon, 0.0), np.where(located, members.lat, 0.0))
    vectors[~located] = 0.0
    sums = np.add.reduceat(vectors, starts, axis=0) if n else np.zeros((0, 3))
    norms = np.linalg.norm(sums, axis=1)
    h_located = norms > 1e-12
    centroids = np.divide(sums, norms[:, None], out=np.zeros_like(sums), where=h_located[:, None])
    # How far the household's farthest located member is from its centroid: the reach is checked for
    # the centroid plus this radius, so every member is within max_distance_km of the point. A member
    # alone is its household's centroid (most households: computed only for the others).
    member_offset = np.zeros(n)
    shared = np.flatnonzero(located & (sizes[household_of] > 1))
    member_offset[shared] = _chord_km_between(vectors, shared, centroids, household_of[shared])
    h_radius = np.maximum.reduceat(member_offset, starts) if n else member_offset

    order = _priority_order(key[starts], h_priority, h_zone, h_distance)

    h_point = np.full(n_households, -1, dtype=np.int64)
    h_reason = np.zeros(n_households, dtype=np.int16)
    h_reason[~h_located] = REASON_CODES["location_unknown"]
    h_reason[h_located & (sizes > vehicle_capacity)] = REASON_CODES["household_larger_than_vehicle"]
    if n_points == 0:
        h_reason[h_reason == 0] = REASON_CODES["no_assembly_points"]

    point_vectors = unit_vectors(points.lon, points.lat) if n_points else np.zeros((0, 3))
    remaining = points.capacity.astype(np.int64).copy()
    queue = order[h_reason[order] == 0]
    if n_points and len(queue):
        _place(queue, centroids, h_radius, sizes, point_vectors, remaining, max_distance_km, h_point)

    # Not placed: nothing in reach at all, or everything in reach was full.
    unplaced = np.flatnonzero((h_point < 0) & (h_reason == 0))
    if len(unplaced):
        nearest_km = chord_to_km(cKDTree(point_vectors).query(centroids[unplaced], k=1,
                                                              workers=threads_for(len(unplaced)))[0])
        beyond = nearest_km + h_radius[unplaced] > max_distance_km
        h_reason[unplaced] = np.where(beyond, REASON_CODES["beyond_max_distance"],
                                      REASON_CODES["no_capacity_in_reach"])

    h_vehicle, h_first_seat, vehicles_per_point = _vehicles(order, h_point, sizes, n_points, vehicle_capacity)

    # ---- back to members, in the order asked for (one gather per column, not two)
    wanted = np.arange(n) if output_order is None else np.asarray(output_order)
    household = household_of[wanted]
    point = h_point[household]
    placed = point >= 0
    within = wanted - starts[household]
    seat = np.where(placed, h_first_seat[household] + within, 0)
    distance = np.full(len(wanted), np.nan)
    if placed.any():
        # From the member, or from the household's centre for a member whose place is unknown.
        chosen = np.flatnonzero(placed & located[wanted])
        distance[chosen] = _chord_km_between(vectors, wanted[chosen], point_vectors, point[chosen])
        chosen = np.flatnonzero(placed & ~located[wanted])
        distance[chosen] = _chord_km_between(centroids, household[chosen], point_vectors, point[chosen])
    # Households in order, members in their household's order: a running count of members before each.
    first_rank = np.empty(n_households, dtype=np.int64)
    first_rank[order] = np.cumsum(sizes[order]) - sizes[order]
    rank = first_rank[household] + within
    assigned_per_point = np.bincount(point[placed], minlength=n_points) if n_points else np.zeros(0, np.int64)
    return Assignment(point=point, vehicle=h_vehicle[household], seat=seat, distance_to_point_km=distance,
                      reason=h_reason[household], rank=rank, priority=h_priority[household],
                      assigned_per_point=assigned_per_point, vehicles_per_point=vehicles_per_point)


def _priority_order(keys: np.ndarray, priority, zone, distance) -> np.ndarray:
    """Households by priority, zone, distance, then household id. When they come in id order (as
    ``build.read_members`` gives them), a stable sort on the first three keeps that order for ties: two
    sort keys fewer."""
    if not len(keys):
        return np.arange(0)
    high, low = keys[:, 0], keys[:, 1]
    if bool(((high[1:] > high[:-1]) | ((high[1:] == high[:-1]) & (low[1:] > low[:-1]))).all()):
        return np.lexsort((distance, zone, priority))
    return np.lexsort((low, high, distance, zone, priority))


class _OpenPoints:
    """A KD-tree of the points that still have room, rebuilt when one fills up."""

    def __init__(self, vectors: np.ndarray, remaining: np.ndarray):
        self.vectors, self.remaining = vectors, remaining
        self.rebuild()

    def rebuild(self) -> None:
        self.index = np.flatnonzero(self.remaining > 0)
        self.tree = cKDTree(self.vectors[self.index]) if len(self.index) else None

    def stale(self) -> bool:
        return bool(len(self.index)) and bool((self.remaining[self.index] <= 0).any())


def _place(queue, centroids, radius, sizes, point_vectors, remaining, max_distance_km, h_point) -> None:
    """The sequential greedy over ``queue`` (households in priority order); fills ``h_point``."""
    open_points = _OpenPoints(point_vectors, remaining)
    max_chord = km_to_chord(max_distance_km)
    n_points = len(remaining)
    position, window = 0, 1024
    # Every household's nearest open point, asked once; a point filling up later sends only the households
    # whose nearest it was back to the tree (the others' nearest is still open, so still the nearest), and
    # out of reach stays out of reach (fewer points are open).
    first_nearest, first_reach = _nearest_open(open_points, centroids[queue], radius[queue], max_chord,
                                               max_distance_km)
    batch = None  # (households, nearest open point, in reach) of the window being placed
    while position < len(queue) and open_points.tree is not None:
        if batch is None:
            households = queue[position:position + window]
            nearest = first_nearest[position:position + window].copy()
            reach = first_reach[position:position + window].copy()
            batch = households, nearest, reach
        households, nearest, reach = batch
        again = np.flatnonzero(reach & (remaining[np.maximum(nearest, 0)] <= 0))
        if len(again):
            nearest[again], reach[again] = _nearest_open(open_points, centroids[households[again]],
                                                         radius[households[again]], max_chord, max_distance_km)
        stop = _fitting_prefix(nearest, reach, sizes[households], remaining, n_points)
        taken = households[:stop][reach[:stop]]
        h_point[taken] = nearest[:stop][reach[:stop]]
        np.subtract.at(remaining, h_point[taken], sizes[taken])
        position += stop
        if stop < len(households):
            _place_one(households[stop], open_points, centroids, radius, sizes, remaining, max_distance_km, h_point)
            position += 1
            batch = tuple(part[stop + 1:] for part in batch)
            window = max(_WINDOW_MIN, window // 2)
        else:
            batch = None
            window = min(_WINDOW_MAX, window * 2)
        if batch is not None and not len(batch[0]):
            batch = None
        if open_points.stale():
            open_points.rebuild()


def _nearest_open(open_points, centroids, radius, max_chord, max_distance_km):
    """(the nearest open point or -1, whether it is in reach of every member) of each household."""
    chord, found = open_points.tree.query(centroids, k=1, distance_upper_bound=max_chord,
                                          workers=threads_for(len(centroids)))
    within = found < len(open_points.index)
    nearest = np.where(within, open_points.index[np.minimum(found, len(open_points.index) - 1)], -1)
    # The nearest open point out of reach means every open point is: the household stays unplaced.
    reach = within & (chord_to_km(np.where(within, chord, 0.0)) + radius <= max_distance_km)
    return nearest, reach


def _fitting_prefix(nearest, reach, demand, remaining, n_points) -> int:
    """How many households, from the first, fit their nearest open point given those before them."""
    wanted = np.where(reach, nearest, n_points)
    demand = np.where(reach, demand, 0)
    if (np.bincount(wanted, weights=demand, minlength=n_points + 1)[:n_points] <= remaining).all():
        return len(nearest)  # every point has room for all that want it (half the windows): no sort
    by_point = np.argsort(wanted, kind="stable")
    cumulative = np.cumsum(demand[by_point])
    sorted_wanted = wanted[by_point]
    group_start = np.ones(len(by_point), dtype=bool)
    group_start[1:] = sorted_wanted[1:] != sorted_wanted[:-1]
    offsets = np.maximum.accumulate(np.where(group_start, np.arange(len(by_point)), 0))
    before = np.where(offsets > 0, cumulative[np.maximum(offsets - 1, 0)], 0)
    demand_so_far = np.empty_like(cumulative)
    demand_so_far[by_point] = cumulative - before
    misfit = reach & (demand_so_far > remaining[np.minimum(wanted, n_points - 1)])
    return int(np.argmax(misfit)) if misfit.any() else len(nearest)


def _place_one(household, open_points, centroids, radius, sizes, remaining, max_distance_km, h_point) -> None:
    """The nearest point with room for the whole household (its nearest open point had too little)."""
    size, reach_km = sizes[household], max_distance_km - radius[household]
    k = min(16, len(open_points.index))
    chord, found = open_points.tree.query(centroids[household], k=k)
    candidates = open_points.index[np.atleast_1d(found)]
    in_reach = chord_to_km(np.atleast_1d(chord)) <= reach_km
    fits = in_reach & (remaining[candidates] >= size)
    if fits.any():
        point = candidates[int(np.argmax(fits))]
        h_point[household] = point
        remaining[point] -= size
        return
    if not in_reach.all():
        return
    if k == len(open_points.index):
        return
    # Sixteen nearest open points all too full for this household: scan every point.
    distance = chord_to_km(np.linalg.norm(open_points.vectors - centroids[household], axis=1))
    fits = (remaining >= size) & (distance <= reach_km)
    if fits.any():
        best = int(np.argmin(np.where(fits, distance, np.inf)))
        h_point[household] = best
        remaining[best] -= size


def _vehicles(order, h_point, sizes, n_points, vehicle_capacity):
    """Next-fit packing per point, in priority order: (vehicle, first seat) per household, vehicles per point.

    One step per vehicle, every point at once: a vehicle starting at household ``a`` of its point takes
    households up to the last whose running total of persons (the cumulative sum over the point's
    households) stays within ``vehicle_capacity`` of the total before ``a``: a binary search.
    """
    h_vehicle = np.zeros(len(h_point), dtype=np.int64)
    h_first_seat = np.zeros(len(h_point), dtype=np.int64)
    vehicles = np.zeros(n_points, dtype=np.int64)
    placed = order[h_point[order] >= 0]
    if not len(placed):
        return h_vehicle, h_first_seat, vehicles
    # Per point, still in priority order: a stable sort, numpy's radix sort when the point fits 16 bits.
    wanted = h_point[placed].astype(np.int16 if n_points <= np.iinfo(np.int16).max else np.int64)
    by_point = placed[np.argsort(wanted, kind="stable")]
    points = h_point[by_point]
    size = sizes[by_point].astype(np.int64)
    total = np.cumsum(size)
    before = total - size
    group_start = np.flatnonzero(np.r_[True, points[1:] != points[:-1]])
    group_end = np.r_[group_start[1:], len(points)]
    starts_vehicle = np.zeros(len(points), dtype=bool)
    current, end = group_start, group_end
    while len(current):
        starts_vehicle[current] = True
        following = np.searchsorted(total, before[current] + vehicle_capacity, side="right")
        following = np.minimum(np.maximum(following, current + 1), end)
        going = following < end
        current, end = following[going], end[going]
    vehicle_count = np.cumsum(starts_vehicle)
    group_of = np.repeat(np.arange(len(group_start)), group_end - group_start)
    vehicle = vehicle_count - vehicle_count[group_start][group_of] + 1
    vehicle_start = np.maximum.accumulate(np.where(starts_vehicle, np.arange(len(points)), 0))
    h_vehicle[by_point] = vehicle
    h_first_seat[by_point] = before - before[vehicle_start] + 1
    vehicles[points[group_start]] = vehicle[group_end - 1]
    return h_vehicle, h_first_seat, vehicles
