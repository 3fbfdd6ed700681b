"""Validating import rows with the same rules as the API (``registry.validation``), but lenient on what
agencies write for countries and occupations: ``host_country`` and ``nationality`` may be names in any
common spelling, ``occupation`` a title, mapped by ``registry.codes.harmonise`` to ISO 3166-1 and
ISCO-08 (or refused as row errors naming the closest candidates; SPEC §11).

A row becomes a tuple in ``STAGING_COLUMNS`` order, or a list of
``(field, message)`` errors. Written for speed: one pass per row, column
positions resolved once from the header.
"""
from __future__ import annotations

import uuid

from registry import validation
from registry.codes import harmonise
from registry.errors import Unprocessable
from registry.imports.reader import Row
from registry.validation import LEGAL_STATUSES, SEXES, VULNERABILITIES

# The columns of an import file (SPEC §4.2), in the template's order.
COLUMNS = (
    "family_name", "given_names", "native_name", "sex", "date_of_birth", "nationality", "passport_number",
    "national_id_number", "phones", "email", "languages", "vulnerabilities", "household_ref",
    "next_of_kin_name", "next_of_kin_relation", "next_of_kin_phone",
    "host_country", "city", "address", "employer", "occupation", "occupation_isco", "sector", "contract_start", "contract_end",
    "legal_status", "recruitment_agency", "lat", "lon",
)
REQUIRED = ("family_name", "given_names", "sex", "date_of_birth", "nationality", "host_country")

# What a valid row turns into: the staging table's columns and types, in order.
# The validator leaves the file's ``household_ref`` in the ``household_id``
# slot; the import replaces it with the household's UUID.
STAGING = (
    ("row_no", "integer"), ("id", "uuid"), ("household_id", "uuid"), ("family_name", "text"),
    ("given_names", "text"), ("native_name", "text"), ("sex", "text"), ("date_of_birth", "date"),
    ("nationality", "text"), ("passport_number", "text"), ("national_id_number", "text"), ("phones", "text[]"),
    ("email", "text"), ("languages", "text[]"), ("vulnerabilities", "text[]"), ("search_name", "text"),
    ("next_of_kin_name", "text"), ("next_of_kin_relation", "text"), ("next_of_kin_phone", "text"),
    ("host_country", "text"), ("city", "text"), ("address", "text"), ("employer", "text"),
    ("occupation_isco", "text"), ("sector", "text"), ("contract_start", "date"), ("contract_end", "date"),
    ("legal_status", "text"), ("recruitment_agency", "text"), ("lat", "float8"), ("lon", "float8"),
)
STAGING_COLUMNS = tuple(name for name, _ in STAGING)
HOUSEHOLD_SLOT = STAGING_COLUMNS.index("household_id")

TEXT_LIMITS = {"family_name": 200, "given_names": 200, "native_name": 200, "national_id_number": 40,
                "household_ref": 100, "next_of_kin_name": 200, "next_of_kin_relation": 50, "city": 200,
                "address": 500, "employer": 200, "sector": 100, "recruitment_agency": 200}
_SEXES = frozenset(SEXES)
_LEGAL = frozenset(LEGAL_STATUSES)
_VULNERABLE = frozenset(VULNERABILITIES)


class UnknownColumns(Unprocessable):
    code, title = "unknown-columns", "The file has columns this service does not know"


class RepeatedColumns(Unprocessable):
    code, title = "repeated-columns", "The file names a column more than once"


class MissingColumns(Unprocessable):
    code, title = "missing-columns", "The file lacks required columns"


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


# Header cells are quoted in errors cut to this length (and only when the first row is a header).
QUOTED_CHARS = 40


class RowValidator:
    def __init__(self, header: list[str]):
        known = set(COLUMNS)
        # Blank header cells (a trailing comma, an empty formatted cell) name no column: ignored.
        unknown = [name for name in header if name and name not in known]
        missing = [name for name in REQUIRED if name not in header]
        if unknown and missing:
            # Most likely a file without its header row: the "column names" are a person's data.
            raise UnknownColumns(
                "The first row must name the columns (see GET /api/v1/imports/template.csv): this one names "
                f"{len(unknown)} unknown columns and lacks the required {', '.join(missing)}. Is the header row "
                "missing?")
        if unknown:
            quoted = [name[:QUOTED_CHARS] for name in unknown]
            raise UnknownColumns("Unknown columns: " + ", ".join(repr(n) for n in quoted)
                                 + ". Use the template's column names.", columns=quoted)
        repeated = sorted({name for name in header if name and header.count(name) > 1})
        if repeated:
            raise RepeatedColumns("Columns named more than once: " + ", ".join(repeated) + ".", columns=repeated)
        if missing:
            raise MissingColumns("Missing required columns: " + ", ".join(missing) + ".", columns=missing)
        self.position = {name: header.index(name) for name in COLUMNS if name in header}
        self.width = len(header)

    def validate(self, row: Row) -> tuple[tuple | None, list[tuple[str, str]]]:
        """The row's values in ``STAGING_COLUMNS`` order, or its errors (the reader's problems first: a row
        the reader could not use whole is not validated further)."""
        if row.problems:
            return None, list(row.problems)
        row_no, cells = row.number, row.cells
        if len(cells) < self.width:
            cells = list(cells) + [""] * (self.width - len(cells))
        get = {name: cells[i].strip() if cells[i] else "" for name, i in self.position.items()}.get
        errors: list[tuple[str, str]] = []

        def parsed(name, parser):
            value = get(name, "")
            if not value:
                if name in REQUIRED:
                    errors.append((name, "Required."))
                return None
            try:
                return parser(value)
            except ValueError as exc:
                errors.append((name, str(exc)))
                return None

        text = {}
        for name, limit in TEXT_LIMITS.items():
            try:
                text[name] = validation.parse_text(get(name, ""), limit, required=name in REQUIRED)
            except ValueError as exc:
                errors.append((name, str(exc)))
                text[name] = None

        sex = get("sex", "")
        if sex not in _SEXES:
            errors.append(("sex", "Required." if not sex else f"Must be one of: {', '.join(SEXES)}."))
        legal = get("legal_status", "") or "unknown"
        if legal not in _LEGAL:
            errors.append(("legal_status", f"Must be one of: {', '.join(LEGAL_STATUSES)}."))
        born = parsed("date_of_birth", validation.parse_birth_date)
        nationality = parsed("nationality", harmonise.country)
        host = parsed("host_country", harmonise.country)
        passport = parsed("passport_number", validation.parse_passport)
        email = parsed("email", validation.parse_email)
        isco = parsed("occupation_isco", validation.parse_isco)
        titled = parsed("occupation", harmonise.occupation)
        if titled and isco and not (isco.startswith(titled) or titled.startswith(isco)):
            errors.append(("occupation", f"The title maps to ISCO-08 {titled}, but occupation_isco is {isco}: "
                                         "make them agree or leave one empty."))
        isco = isco or titled
        start = parsed("contract_start", validation.parse_date)
        end = parsed("contract_end", validation.parse_date)
        try:
            validation.check_contract(start, end)
        except ValueError as exc:
            errors.append(("contract_end", str(exc)))
        kin_phone = parsed("next_of_kin_phone", validation.parse_phone)

        def parsed_list(name, parser):
            values = []
            for value in _split(get(name, "")):
                try:
                    values.append(parser(value))
                except ValueError as exc:
                    # The message names the item, not its value: job results are stored.
                    errors.append((name, f"Item {len(values) + 1}: {exc}"))
            return values

        phones = parsed_list("phones", validation.parse_phone)
        if len(phones) > validation.MAX_PHONES:
            errors.append(("phones", f"At most {validation.MAX_PHONES} phones."))
        languages = parsed_list("languages", validation.parse_language)
        vulnerabilities = _split(get("vulnerabilities", ""))
        for position, value in enumerate(vulnerabilities, 1):
            if value not in _VULNERABLE:
                # The position, never the value: a free-text vulnerability is health data, and results are stored.
                errors.append(("vulnerabilities", f"Item {position}: unknown; use {', '.join(VULNERABILITIES)}."))

        lat = parsed("lat", validation.parse_latitude)
        lon = parsed("lon", validation.parse_longitude)
        if (get("lat", "") == "") != (get("lon", "") == ""):
            errors.append(("lon" if get("lat", "") else "lat", "Give both lat and lon, or neither."))

        if errors:
            return None, errors
        return (
            row_no, uuid.uuid4(), text["household_ref"], text["family_name"], text["given_names"],
            text["native_name"], sex, born, nationality, passport, text["national_id_number"],
            list(dict.fromkeys(phones)), email, languages, sorted(set(vulnerabilities)),
            validation.search_key(text["family_name"], text["given_names"], text["native_name"]),
            text["next_of_kin_name"], text["next_of_kin_relation"], kin_phone, host, text["city"],
            text["address"], text["employer"], isco, text["sector"], start, end, legal,
            text["recruitment_agency"], lat, lon,
        ), []
