"""Secondary suppression holds (SPEC §11): over random 2- and 3-dimensional tables with all their margins, no
suppressed cell or total can be worked out exactly from what is published.

The check is independent of the method's own audit: for every suppressed cell, linear programming
(``scipy.optimize.linprog``) finds the smallest and the largest value consistent with the published cells and
totals and with counts being non-negative; they must differ.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from registry.statistics.suppression import suppress

THRESHOLD = 10


@st.composite
def tables(draw):
    """A 2- or 3-dimensional table of 2-5 categories each, small counts common (a few empty cells)."""
    shape = draw(st.lists(st.integers(2, 5), min_size=2, max_size=3))
    count = st.one_of(st.integers(0, 12), st.integers(0, 40), st.integers(10, 500))
    inner = {}
    for key in itertools.product(*(range(n) for n in shape)):
        value = draw(count)
        if value or draw(st.booleans()):  # some zero cells given, others left out (published as zeros)
            inner[tuple(f"c{i}" for i in key)] = value
    return [f"d{i}" for i in range(len(shape))], inner


def bounds(table, key) -> tuple[float, float]:
    """The least and the greatest value of ``key`` consistent with what the table publishes."""
    hidden = [k for k in table.inner if k in table.suppressed]
    position = {k: i for i, k in enumerate(hidden)}

    def covers(margin, cell):
        return all(m is None or m == c for m, c in zip(margin, cell))

    rows, rhs = [], []
    for margin, total in table.margins.items():
        if margin in table.suppressed:
            continue
        row = np.zeros(len(hidden))
        known = 0
        for cell, value in table.inner.items():
            if covers(margin, cell):
                if cell in position:
                    row[position[cell]] = 1
                else:
                    known += value
        if row.any():
            rows.append(row)
            rhs.append(total - known)
    if key in table.inner:
        objective, offset = np.eye(len(hidden))[position[key]], 0
    else:
        objective = np.array([1.0 if covers(key, k) else 0.0 for k in hidden])
        offset = sum(v for c, v in table.inner.items() if covers(key, c) and c not in position)
    options = {"A_eq": np.array(rows) if rows else None, "b_eq": np.array(rhs) if rows else None,
               "bounds": [(0, None)] * len(hidden), "method": "highs"}
    low = linprog(objective, **options)
    high = linprog(-objective, **options)
    assert low.status == 0, low.message  # the true table is feasible
    top = float("inf") if high.status == 3 else -high.fun  # 3: unbounded
    return low.fun + offset, top + offset


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_no_suppressed_cell_or_total_can_be_derived_exactly(table_spec):
    dimensions, inner = table_spec
    table = suppress(dimensions, inner, THRESHOLD)
    # Primary: every cell and total of 1..9 people is suppressed; published values are the true ones.
    for key in list(table.inner) + list(table.margins):
        value = table.value(key)
        if 0 < value < THRESHOLD:
            assert key in table.suppressed
    assert all(table.value(k) > 0 for k in table.suppressed if k in table.inner)  # empty cells never hidden
    for key in table.suppressed:
        low, high = bounds(table, key)
        assert high - low > 1e-6, (key, table.value(key), low, high)


def test_a_row_total_minus_the_published_cells_is_not_left_open():
    inner = {("SA", "F"): 3, ("SA", "M"): 250, ("AE", "F"): 120, ("AE", "M"): 300}
    table = suppress(["host_country", "sex"], inner, THRESHOLD)
    assert ("SA", "F") in table.primary
    # Alone it would follow from SA's total; a second cell in its row and column is hidden with it.
    assert len([k for k in table.suppressed if k in table.inner]) >= 4 or any(
        m in table.suppressed for m in table.margins)
    for key in table.suppressed:
        low, high = bounds(table, key)
        assert high > low


def test_nothing_is_suppressed_when_every_cell_is_large_enough():
    inner = {("SA", "F"): 30, ("SA", "M"): 250, ("AE", "F"): 120, ("AE", "M"): 300}
    table = suppress(["host_country", "sex"], inner, THRESHOLD)
    assert table.suppressed == set() and table.margins[(None, None)] == 700


@pytest.mark.parametrize("count", [1, 9])
def test_a_table_of_one_small_cell_hides_its_totals_too(count):
    table = suppress(["host_country"], {("SA",): count, ("AE",): 500}, THRESHOLD)
    assert ("SA",) in table.suppressed
    low, high = bounds(table, ("SA",))
    assert high > low


def test_two_hundred_seeded_tables_need_and_get_secondary_suppression(capsys):
    """The property over a fixed sample, so the figures can be quoted: how many tables needed secondary
    suppression, and how many suppressed cells linear programming found open (all of them)."""
    rng = np.random.default_rng(2026)
    tables_with_secondary = checked = 0
    for n in range(200):
        shape = rng.integers(2, 6, size=2 + n % 2)
        inner = {tuple(f"c{i}" for i in key): int(rng.choice([rng.integers(0, 12), rng.integers(10, 300)]))
                 for key in itertools.product(*(range(k) for k in shape))}
        table = suppress([f"d{i}" for i in range(len(shape))], inner, THRESHOLD)
        tables_with_secondary += bool(table.suppressed - table.primary)
        for key in table.suppressed:
            low, high = bounds(table, key)
            assert high - low > 1e-6, (n, key)
            checked += 1
    with capsys.disabled():
        print(f"\nsuppression: 200 tables (2-D and 3-D with all margins), {tables_with_secondary} needed secondary "
              f"suppression, {checked} suppressed cells and totals each open under linear programming")
    assert tables_with_secondary >= 100
