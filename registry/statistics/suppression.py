"""Disclosure control for published tables (SPEC §11): primary and secondary cell suppression.

A table is its inner cells (one per combination of categories of its
dimensions) and its margins: for every subset of the dimensions, the sums over
the others, down to the grand total. A cell or total counting fewer than
``threshold`` people (but some) is sensitive and is suppressed (primary). That
is not enough: a hidden cell could be worked out from what is published (a row
total minus the row's other cells). Secondary suppression hides further cells
until no hidden value follows exactly from the published cells and totals.

**The method: hypercubes.** Write the table with one more index per dimension,
"total", so that margins are cells too. For a sensitive cell *x*, choose for
every dimension a second index *y_d* (another category, or the total; a
category when *x* is itself the total there) and take the 2^d cells of the
box {x_d, y_d} x ... . Move the cells of the box by ±ε, the sign flipping along
every dimension where the pair is two categories and not along one where it
is a category and its total: every total outside the box stays the same (each
sums two cells of opposite sign, or none), and the cells inside move. So when
every cell of the box is hidden, and the cells that decrease are positive
(all inner cells of a box are required to be), what is published is
consistent with *x* ± ε: neither *x* nor any other cell of the box can be
worked out exactly. Each sensitive cell not already in a hidden box gets the
box whose cells not yet hidden count the fewest people (information lost);
the search over all boxes of a cell is one vectorised sum of 2^d shifted
copies of the table. Every hidden cell lies in a hidden box, so none is
determined; the tests check this against linear programming (the minimum and
maximum of each hidden cell consistent with what is published differ).

No maintained Python library does cell suppression (the reference
implementations, τ-ARGUS and R's sdcTable, are Java and R; this is the
classic hypercube method they also offer), hence this module.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

METHOD = ("hypercube cell suppression: cells and totals counting 1 to {low} people are suppressed (primary), and "
          "each sits in a box of suppressed cells and totals whose values can move together without changing "
          "anything published (secondary), so no suppressed value can be derived exactly from the published cells "
          "and totals")

Key = tuple  # one category per dimension; None where a total sums the dimension away


@dataclass
class Table:
    """A table's inner cells and every one of its totals, with what is suppressed."""

    dimensions: tuple[str, ...]
    inner: dict[Key, int]
    margins: dict[Key, int] = field(default_factory=dict)
    suppressed: set[Key] = field(default_factory=set)
    primary: set[Key] = field(default_factory=set)

    def value(self, key: Key) -> int:
        return self.inner[key] if key in self.inner else self.margins[key]

    def published(self, key: Key) -> int | None:
        return None if key in self.suppressed else self.value(key)


def suppress(dimensions: Sequence[str], inner: Mapping[Key, int], threshold: int) -> Table:
    """The table of ``inner`` (cells left out count zero and are published as zeros) with all its totals and
    what to suppress. Nothing is suppressed when ``threshold`` <= 1."""
    rank = len(dimensions)
    categories = [sorted({k[d] for k in inner}, key=str) for d in range(rank)]
    number = [{c: i for i, c in enumerate(cs)} for cs in categories]
    shape = tuple(len(cs) + 1 for cs in categories)  # the last index of each dimension is its total
    values = np.zeros(shape, dtype=np.int64)
    for key, count in inner.items():
        values[tuple(number[d][c] for d, c in enumerate(key))] += int(count)
    for d in range(rank):
        head = [slice(None)] * rank
        head[d] = slice(0, shape[d] - 1)
        total = [slice(None)] * rank
        total[d] = shape[d] - 1
        values[tuple(total)] = values[tuple(head)].sum(axis=d)

    hidden = (values > 0) & (values < threshold)
    primary = hidden.copy()
    if hidden.any():
        _protect(values, hidden, primary)

    def key_of(index) -> Key:
        return tuple(None if i == shape[d] - 1 else categories[d][i] for d, i in enumerate(index))

    table = Table(tuple(dimensions), {k: int(v) for k, v in inner.items()})
    for index in itertools.product(*(range(n) for n in shape)):
        key = key_of(index)
        if None in key:
            table.margins[key] = int(values[index])
        elif key not in table.inner:
            continue  # a cell left out: zero, never suppressed
        if hidden[index]:
            table.suppressed.add(key)
        if primary[index]:
            table.primary.add(key)
    return table


def _protect(values: np.ndarray, hidden: np.ndarray, primary: np.ndarray) -> None:
    """Hide, for every sensitive cell not yet in a hidden box, the cheapest box around it (module docstring)."""
    rank, shape = values.ndim, values.shape
    inner_zero = values == 0  # a box may not need an empty cell to decrease
    boxed = np.zeros_like(hidden)
    # Smallest first: a cell of 1 person is the most in need, and its box often covers its neighbours.
    for index in sorted(zip(*np.nonzero(primary)), key=lambda i: (int(values[i]), i)):
        index = tuple(int(i) for i in index)
        if boxed[index]:
            continue
        cost = np.where(hidden, 0.0, values.astype(float))
        cost[inner_zero] = np.inf
        total = np.zeros(shape)
        for moving in itertools.product((False, True), repeat=rank):
            # The box corner taking y on the moving dimensions and x on the others, for every y at once.
            picked = tuple(slice(None) if m else index[d] for d, m in enumerate(moving))
            part = cost[picked]
            total = total + part.reshape(tuple(shape[d] if m else 1 for d, m in enumerate(moving)))
        for d in range(rank):  # y_d must differ from x_d; a total of x's must pair with a category
            invalid = [slice(None)] * rank
            invalid[d] = index[d]
            total[tuple(invalid)] = np.inf
            if index[d] == shape[d] - 1:
                invalid[d] = shape[d] - 1
                total[tuple(invalid)] = np.inf
        best = np.unravel_index(int(np.argmin(total)), shape)
        if not np.isfinite(total[best]):  # cannot happen: x with all of its totals is always a box
            raise AssertionError("no box around a sensitive cell")
        for corner in itertools.product(*((index[d], int(best[d])) for d in range(rank))):
            hidden[corner] = True
            boxed[corner] = True
