"""Geocoding speed: N host-country/city pairs through the gazetteer, as the import path looks them up.

    python bench/geocode.py [--pairs 100000] [--runs 3] [--seed 7]

Three figures, each the median of --runs:

* ``import path``: the pairs of N demo rows (``registry.demo.generate_rows``) through the
  import's ``CityLocator``, which looks each distinct pair up once: what an import pays.
* ``distinct lookups``: N pairs drawn from the gazetteer itself, written as a person would
  (accents, other case, "City, Region", an Arabic article, a typo now and then), each through
  ``Gazetteer.lookup`` without a cache: the worst case, every pair new.
* ``floor``: the same N pairs as one exact dict lookup each (the key already normalised):
  what a lookup cannot beat.

No database is needed. The gazetteer's load time is printed separately (once per process).
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def written_like_a_person(rng: random.Random, place) -> str:
    """A name as typed into a form or a spreadsheet."""
    name = place.name
    roll = rng.random()
    if roll < 0.25:
        return name.upper()
    if roll < 0.45:
        return name.lower()
    if roll < 0.6 and place.admin1:
        return f"{name}, {place.admin1}"
    if roll < 0.7 and len(name) > 6:  # a typo: two letters swapped
        i = rng.randrange(1, len(name) - 2)
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    return name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from registry.demo import generate_rows
    from registry.geocoding import Gazetteer, place_key
    from registry.imports.rows import COLUMNS
    from registry.imports.batches import CityLocator

    started = time.perf_counter()
    gazetteer = Gazetteer.load()
    print(f"gazetteer loaded in {time.perf_counter() - started:.2f} s: {len(gazetteer.places):,} places")
    import registry.geocoding
    registry.geocoding.gazetteer.cache_clear()
    registry.geocoding.gazetteer()  # the import's locator uses the process's copy

    rows = generate_rows(args.pairs, args.seed)
    c = {name: i for i, name in enumerate(COLUMNS)}
    import_pairs = [(r[c["host_country"]], r[c["city"]]) for r in rows]
    rng = random.Random(args.seed)
    drawn = [rng.choice(gazetteer.places) for _ in range(args.pairs)]
    typed = [(p.country, written_like_a_person(rng, p)) for p in drawn]
    exact = [(p.country, place_key(p.name)) for p in drawn]
    keys = gazetteer._keys

    import_path, distinct, floor, found = [], [], [], 0
    for run in range(args.runs):
        locate = CityLocator()
        started = time.perf_counter()
        for country, city in import_pairs:
            locate(country, city)
        import_path.append(time.perf_counter() - started)

        started = time.perf_counter()
        found = sum(1 for country, city in typed if gazetteer.lookup(country, city) is not None)
        distinct.append(time.perf_counter() - started)

        started = time.perf_counter()
        for pair in exact:
            keys.get(pair)
        floor.append(time.perf_counter() - started)
        print(f"run {run + 1}: import path {args.pairs / import_path[-1]:,.0f} pairs/s, distinct lookups "
              f"{args.pairs / distinct[-1]:,.0f} pairs/s, floor {args.pairs / floor[-1]:,.0f} pairs/s", flush=True)

    med = statistics.median
    n = args.pairs
    print(f"\nmedian of {args.runs} runs, {n:,} pairs:")
    print(f"  import path (demo rows, each distinct pair once)  {n / med(import_path):>12,.0f} pairs/s "
          f"({med(import_path) / n * 1e6:.2f} µs/row)")
    print(f"  distinct lookups (typed variants, uncached)        {n / med(distinct):>12,.0f} pairs/s "
          f"({med(distinct) / n * 1e6:.1f} µs/pair); found {found / n:.1%}")
    print(f"  floor (one exact dict lookup per pair)             {n / med(floor):>12,.0f} pairs/s   "
          f"distinct lookups are {med(floor) / med(distinct):.3f}x the floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
