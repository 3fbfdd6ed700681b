"""Checking an import's rows a batch at a time: what the job's process does alone, or each validator process
(registry/imports/pool.py) does for its share of the batches.

A batch of rows from the reader becomes a ``Checked``: its valid rows already
encoded for ``COPY … (FORMAT BINARY)`` into the import's staging table (the
document numbers encrypted and indexed, the household and location filled in),
the rejections and the city warnings by row number, and each valid row's
passport so that the job's process finds duplicates within the file. Nothing
here touches the database, the broker or the Flask app: a batch is checked the
same way in any process.
"""
from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from psycopg import adapters
from psycopg._copy_base import format_row_binary  # psycopg's own row encoder (C), what Copy.write_row runs
from psycopg.adapt import Transformer
from psycopg.pq import Format

from registry.crypto import Keyring
from registry.geocoding import gazetteer
from registry.imports.reader import Row
from registry.imports.rows import HOUSEHOLD_SLOT, STAGING, STAGING_COLUMNS, RowValidator

# A valid row as stored in staging: the document numbers replaced by their ciphertext and blind index
# (and, while the index key is being rotated, the passport's index under each older key).
PASSPORT_SLOT = STAGING_COLUMNS.index("passport_number")
assert STAGING_COLUMNS[PASSPORT_SLOT + 1] == "national_id_number"
NATIONALITY_SLOT, HOST_SLOT, CITY_SLOT, LAT_SLOT = (
    STAGING_COLUMNS.index(c) for c in ("nationality", "host_country", "city", "lat"))
assert STAGING_COLUMNS[LAT_SLOT:] == ("lat", "lon")
# ... and the location's source and precision appended: gps (checked against the host country in
# the database), geocoded_city (from the gazetteer), or null (the country's reference point).
STORED = (STAGING[:PASSPORT_SLOT]
          + (("passport_ciphertext", "bytea"), ("passport_index", "bytea"), ("passport_older_indexes", "bytea[]"),
             ("national_id_ciphertext", "bytea"), ("national_id_index", "bytea"))
          + STAGING[PASSPORT_SLOT + 2:]
          + (("location_source", "text"), ("location_precision_m", "float8")))

# PostgreSQL's binary COPY framing: signature, flags and header extension length; the end marker.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
COPY_TRAILER = b"\xff\xff"


@dataclass
class Checked:
    """A batch, checked: its valid rows as a binary COPY payload, and what the job reports about the rest."""
    payload: bytes = b""
    valid: int = 0
    rows: int = 0
    # (row, [(field, message)]) of each rejected row, in file order.
    rejected: list[tuple[int, list[tuple[str, str]]]] = field(default_factory=list)
    # (row, nationality, passport) of each valid row with a passport, in file order.
    passports: list[tuple[int, str, str]] = field(default_factory=list)
    # (row, host country) of each valid row whose city is not in the gazetteer (its country's point is used).
    unlocated: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class CheckSettings:
    """What checking needs, the same in every process of one job (sent to each validator process)."""
    header: list[str]
    keys: tuple  # Keyring's fields: (current, keys, index_current, index_keys)
    households: uuid.UUID  # one random namespace per job: a file's household_ref → the same UUID everywhere
    gps_precision_m: float

    @classmethod
    def new(cls, header: list[str], ring: Keyring, gps_precision_m: float) -> CheckSettings:
        return cls(header, (ring.current, ring.keys, ring.index_current, ring.index_keys), uuid.uuid4(),
                   gps_precision_m)


class BatchChecker:
    """Validates batches of rows into ``Checked`` (see the module's docstring).

    :raises registry.errors.Unprocessable: when built, for a header the import refuses.
    """

    def __init__(self, settings: CheckSettings):
        self.validator = RowValidator(settings.header)
        self.ring = Keyring(*settings.keys)
        self.older_index_versions = self.ring.older_index_versions
        self.households = settings.households
        self.gps_precision_m = settings.gps_precision_m
        self.locate = CityLocator()
        self._encoder = Transformer()
        self._encoder.set_dumper_types([adapters.types.get_oid(kind) for _, kind in STORED], Format.BINARY)

    def check(self, batch: Iterable[Row]) -> Checked:
        validate, ring, locate, encoder = self.validator.validate, self.ring, self.locate, self._encoder
        older, households, gps_precision = self.older_index_versions, self.households, self.gps_precision_m
        checked = Checked()
        payload = bytearray(COPY_HEADER)
        rows = 0
        for row in batch:
            rows += 1
            values, row_errors = validate(row)
            if row_errors:
                checked.rejected.append((row.number, row_errors))
                continue
            national_id, passport, number = values[1], values[PASSPORT_SLOT], values[PASSPORT_SLOT + 1]
            if passport:
                checked.passports.append((row.number, values[NATIONALITY_SLOT], passport))
            ref = values[HOUSEHOLD_SLOT]
            household = uuid.uuid5(households, ref) if ref else uuid.uuid4()
            documents = (
                ring.encrypt("passport", national_id, passport) if passport else None,
                ring.blind_index("passport", passport) if passport else None,
                [ring.blind_index("passport", passport, v) for v in older] if passport and older else None,
                ring.encrypt("national_id", national_id, number) if number else None,
                ring.blind_index("national_id", number) if number else None,
            )
            if values[LAT_SLOT] is not None:
                location = (values[LAT_SLOT], values[LAT_SLOT + 1], "gps", gps_precision)
            else:
                location = locate(values[HOST_SLOT], values[CITY_SLOT])
                if location[2] is None and values[CITY_SLOT]:
                    checked.unlocated.append((row.number, values[HOST_SLOT]))
            format_row_binary(values[:HOUSEHOLD_SLOT] + (household,) + values[HOUSEHOLD_SLOT + 1:PASSPORT_SLOT]
                              + documents + values[PASSPORT_SLOT + 2:LAT_SLOT] + location, encoder, payload)
            checked.valid += 1
        payload += COPY_TRAILER
        checked.payload, checked.rows = bytes(payload), rows
        return checked


class CityLocator:
    """Host country + city → (lat, lon, source, precision) from the gazetteer, each pair looked up once.

    The gazetteer is loaded (about a second) on the first city to look up: a file whose rows all give a
    point never needs it.
    """

    def __init__(self):
        self._gazetteer = None
        self._cache: dict[tuple[str, str | None], tuple] = {}

    def __call__(self, country: str, city: str | None) -> tuple:
        key = (country, city)
        found = self._cache.get(key)
        if found is None:
            match = None
            if city:
                if self._gazetteer is None:
                    self._gazetteer = gazetteer()
                match = self._gazetteer.lookup(country, city)
            found = (match.place.lat, match.place.lon, "geocoded_city", match.place.precision_m) if match \
                else (None, None, None, None)
            self._cache[key] = found
        return found


def batches_of(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
