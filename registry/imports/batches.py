"""Checking an import's rows a batch at a time: what the job's process does alone, or each validator process
(registry/imports/pool.py) does for its share of the batches.

A batch of rows from the reader becomes a ``Checked``: each valid row already
encoded for ``COPY … (FORMAT BINARY)`` into the four tables it is stored in
(the document numbers encrypted and indexed, the household and location filled
in), what only the database can still refuse (a point outside its host country,
a passport already registered), the rejections and the city warnings by row
number, and each valid row's passport so that the job's process finds
duplicates within the file. Nothing here touches the database, the broker or
the Flask app: a batch is checked the same way in any process.
"""
from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

from psycopg import adapters
from psycopg._copy_base import format_row_binary  # psycopg's own row encoder (C), what Copy.write_row runs
from psycopg.adapt import Transformer
from psycopg.pq import Format

from registry.codes import harmonise
from registry.crypto import Keyring
from registry.geocoding import gazetteer
from registry.imports.reader import Row
from registry.imports.rows import STAGING_COLUMNS, TEXT_LIMITS, RowValidator
from registry.validation import isco_codes, language_codes, parse_text

# The rows of the four tables a valid row becomes, as COPYed (column, PostgreSQL type of the binary encoding;
# a geometry is sent as EWKB, which its binary input reads).
NATIONAL_COLUMNS = (
    ("id", "uuid"), ("family_name", "varchar"), ("given_names", "varchar"), ("native_name", "varchar"),
    ("sex", "varchar"), ("date_of_birth", "date"), ("nationality", "varchar"), ("passport_ciphertext", "bytea"),
    ("passport_index", "bytea"), ("national_id_ciphertext", "bytea"), ("national_id_index", "bytea"),
    ("phones", "varchar[]"), ("email", "varchar"), ("languages", "varchar[]"), ("vulnerabilities", "varchar[]"),
    ("household_id", "uuid"), ("status", "varchar"), ("source", "varchar"), ("search_name", "text"),
    ("jurisdiction_country", "varchar"), ("location", "bytea"), ("location_source", "varchar"),
    ("location_precision_m", "float8"), ("location_reported_at", "timestamptz"), ("created_by", "uuid"),
    ("index_key_version", "int2"))
DEPLOYMENT_COLUMNS = (
    ("id", "uuid"), ("national_id", "uuid"), ("is_current", "bool"), ("host_country", "varchar"),
    ("city", "varchar"), ("address", "varchar"), ("employer", "varchar"), ("occupation_isco", "varchar"),
    ("sector", "varchar"), ("contract_start", "date"), ("contract_end", "date"), ("legal_status", "varchar"),
    ("recruitment_agency", "varchar"))
REPORT_COLUMNS = (("national_id", "uuid"), ("geom", "bytea"), ("source", "varchar"), ("precision_m", "float8"),
                  ("reported_at", "timestamptz"))
KIN_COLUMNS = (("national_id", "uuid"), ("name", "varchar"), ("relation", "varchar"), ("phone", "varchar"))
TABLES = (("nationals", NATIONAL_COLUMNS), ("location_reports", REPORT_COLUMNS), ("deployments", DEPLOYMENT_COLUMNS),
          ("next_of_kin", KIN_COLUMNS))

CITY_CHARS = TEXT_LIMITS["city"]
# What RowValidator.validate gives, in order (unpacked by name below).
assert STAGING_COLUMNS == (
    "row_no", "id", "household_id", "family_name", "given_names", "native_name", "sex", "date_of_birth",
    "nationality", "passport_number", "national_id_number", "phones", "email", "languages", "vulnerabilities",
    "search_name", "next_of_kin_name", "next_of_kin_relation", "next_of_kin_phone", "host_country", "city",
    "address", "employer", "occupation_isco", "sector", "contract_start", "contract_end", "legal_status",
    "recruitment_agency", "lat", "lon")
_EWKB_POINT = struct.Struct("<BIIdd")  # little-endian, Point with an SRID, the SRID, x (lon), y (lat)
_POINT_WITH_SRID = 0x20000001

# PostgreSQL's binary COPY framing: signature, flags and header extension length; the end marker.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
COPY_TRAILER = b"\xff\xff"


def point(lon: float, lat: float) -> bytes:
    """A WGS 84 point as EWKB (what ``ST_SetSRID(ST_MakePoint(lon, lat), 4326)`` is)."""
    return _EWKB_POINT.pack(1, _POINT_WITH_SRID, 4326, lon, lat)


@dataclass
class Checked:
    """A batch, checked: each valid row encoded for the binary COPY of each table, what the database still checks,
    and what the job reports about the rest."""
    rows: int = 0
    # Per valid row, in file order: its number, and its row of each of ``TABLES`` (None: no row in that table).
    valid: list[int] = field(default_factory=list)
    encoded: tuple[list, list, list, list] = field(default_factory=lambda: ([], [], [], []))
    # (row, lon, lat, host country) of each valid row that gives a point: checked against the country.
    points: list[tuple[int, float, float, str]] = field(default_factory=list)
    # (row, nationality, [passport index under the current key, then each older key]): checked against the registry.
    indexes: list[tuple[int, str, list[bytes]]] = field(default_factory=list)
    # (row, [(field, message)]) of each rejected row, in file order.
    rejected: list[tuple[int, list[tuple[str, str]]]] = field(default_factory=list)
    # (row, nationality, passport) of each valid row with a passport: for duplicates within the file.
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
    created_by: uuid.UUID | None
    reported_at: datetime  # the transaction's start, as now() in it
    countries: dict[str, tuple[bytes | None, float | None]]  # alpha2 → the reference point (EWKB), precision

    @classmethod
    def new(cls, header: list[str], ring: Keyring, gps_precision_m: float, created_by=None,
            reported_at: datetime | None = None, countries: dict | None = None) -> CheckSettings:
        return cls(header, (ring.current, ring.keys, ring.index_current, ring.index_keys), uuid.uuid4(),
                   gps_precision_m, created_by, reported_at or datetime.now(timezone.utc), countries or {})


class BatchChecker:
    """Validates batches of rows into ``Checked`` (see the module's docstring).

    :raises registry.errors.Unprocessable: when built, for a header the import refuses.
    """

    def __init__(self, settings: CheckSettings):
        self.validator = RowValidator(settings.header)
        self.ring = Keyring(*settings.keys)
        self.settings = settings
        self.locate = CityLocator()
        self._encoders = []
        for _, columns in TABLES:
            encoder = Transformer()
            encoder.set_dumper_types([adapters.types.get_oid(kind) for _, kind in columns], Format.BINARY)
            self._encoders.append(encoder)

    def warm(self) -> None:
        """Load what checking rows loads on first use (the code lists; the gazetteer only if a city sent with
        a batch is not in ``cities``)."""
        harmonise.country_index()
        harmonise.occupation_index()
        isco_codes()
        language_codes()

    def cities(self, batch: Iterable[Row]) -> dict[tuple[str, str], tuple]:
        """The places of the batch's (host country, city) pairs that ``check`` will look up (rows without a
        point), from this process's gazetteer: a validator process given them need not load its own (seconds)."""
        position = self.validator.position
        lat, host, city = (position.get(name) for name in ("lat", "host_country", "city"))
        if host is None or city is None:
            return {}
        found = {}
        for row in batch:
            cells = row.cells
            if row.problems or len(cells) <= max(host, city) or lat is not None and lat < len(cells) \
                    and cells[lat].strip():
                continue
            try:
                key = (harmonise.country(cells[host].strip()), parse_text(cells[city].strip(), CITY_CHARS))
            except ValueError:
                continue  # the row is rejected
            if key[1] and key not in found:
                found[key] = self.locate(*key)
        return found

    def check(self, batch: Iterable[Row], cities: dict | None = None) -> Checked:
        validate, ring, locate, settings = self.validator.validate, self.ring, self.locate, self.settings
        older, households = self.ring.older_index_versions, settings.households
        gps_precision, countries = settings.gps_precision_m, settings.countries
        created_by, reported_at, key_version = settings.created_by, settings.reported_at, ring.index_current
        encode_national, encode_report, encode_deployment, encode_kin = self._encoders
        if cities:
            locate.learn(cities)
        checked = Checked()
        nationals, reports, deployments, kin = checked.encoded
        rows = 0
        for row in batch:
            rows += 1
            row_no = row.number
            values, row_errors = validate(row)
            if row_errors:
                checked.rejected.append((row_no, row_errors))
                continue
            (_, national_id, ref, family_name, given_names, native_name, sex, born, nationality, passport, number,
             phones, email, languages, vulnerabilities, search_name, kin_name, kin_relation, kin_phone, host, city,
             address, employer, isco, sector, start, end, legal, agency, lat, lon) = values
            household = uuid.uuid5(households, ref) if ref else uuid.uuid4()
            passport_index = None
            if passport:
                checked.passports.append((row_no, nationality, passport))
                passport_index = ring.blind_index("passport", passport)
                checked.indexes.append((row_no, nationality, [passport_index] + [
                    ring.blind_index("passport", passport, v) for v in older]))
            if lat is not None:
                location, source, precision = point(lon, lat), "gps", gps_precision
                checked.points.append((row_no, lon, lat, host))
            else:
                found = locate(host, city)
                if found[2] is not None:
                    location, source, precision = point(found[1], found[0]), found[2], found[3]
                else:
                    if city:
                        checked.unlocated.append((row_no, host))
                    country = countries.get(host)
                    if country is not None:
                        (location, precision), source = country, "country_centroid"
                    else:
                        location = source = precision = None
            located_at = reported_at if source is not None else None
            nationals.append(_encoded((
                national_id, family_name, given_names, native_name, sex, born, nationality,
                ring.encrypt("passport", national_id, passport) if passport else None, passport_index,
                ring.encrypt("national_id", national_id, number) if number else None,
                ring.blind_index("national_id", number) if number else None,
                phones, email, languages, vulnerabilities, household, "abroad", "bulk_import", search_name, host,
                location, source, precision, located_at, created_by, key_version), encode_national))
            reports.append(_encoded((national_id, location, source, precision, located_at), encode_report)
                           if location is not None else None)
            deployments.append(_encoded((
                uuid.uuid4(), national_id, True, host, city, address, employer, isco, sector, start, end, legal,
                agency), encode_deployment))
            kin.append(_encoded((national_id, kin_name, kin_relation, kin_phone), encode_kin)
                       if kin_name is not None or kin_relation is not None or kin_phone is not None else None)
            checked.valid.append(row_no)
        checked.rows = rows
        return checked


def _encoded(values: tuple, encoder: Transformer) -> bytes:
    out = bytearray()
    format_row_binary(values, encoder, out)
    return bytes(out)


def copy_payload(encoded: Iterable[bytes | None]) -> bytes:
    """Rows encoded by ``BatchChecker`` as one ``COPY … (FORMAT BINARY)`` input (rows that are None left out)."""
    return COPY_HEADER + b"".join(filter(None, encoded)) + COPY_TRAILER


class CityLocator:
    """Host country + city → (lat, lon, source, precision) from the gazetteer, each pair looked up once.

    The gazetteer is loaded (about a second) on the first city to look up: a file whose rows all give a
    point never needs it.
    """

    def __init__(self):
        self._gazetteer = None
        self._cache: dict[tuple[str, str | None], tuple] = {}

    def learn(self, places: dict[tuple[str, str], tuple]) -> None:
        """Places another process's locator found (see ``BatchChecker.cities``)."""
        self._cache.update(places)

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
