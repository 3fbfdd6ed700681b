"""Field rules shared by the API schemas and the bulk import.

Each ``parse_*`` takes raw input and returns the normalised value or raises
``ValueError`` with a message meant for the person who typed it. The
marshmallow fields in ``registry.fields`` and the import's row validator both
call these, so a value accepted by one is accepted by the other.
"""
from __future__ import annotations

import re
import uuid
from datetime import date
from functools import lru_cache
from importlib import resources

import phonenumbers
import pycountry
from anyascii import anyascii
from phonenumbers import phonenumberutil

# Kosovo: user-assigned code in wide use (EU, IMF, Natural Earth), not in ISO 3166-1.
EXTRA_COUNTRIES = {"XK": "Kosovo"}
COUNTRY_CODES = frozenset({c.alpha_2 for c in pycountry.countries} | set(EXTRA_COUNTRIES))

# Code lists of a national's fields (the tables' check constraints, registry/nationals/models.py), here so that
# a process checking import rows (registry/imports/pool.py) need not load the models.
SEXES = ("F", "M", "X")
VULNERABILITIES = ("pregnant", "chronic_illness", "disability", "minor", "elderly", "other")
LEGAL_STATUSES = ("documented", "undocumented", "unknown")

MAX_PHONES = 5
MAX_NAME = 200
EARLIEST_BIRTH = date(1900, 1, 1)
PASSPORT_RE = re.compile(r"^[A-Z0-9]{5,20}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_PASSPORT_STRIP = str.maketrans("", "", " -")
_E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_PHONE_STRIP = str.maketrans("", "", " -().")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def parse_country(value: str) -> str:
    code = str(value).strip().upper()
    if code not in COUNTRY_CODES:
        raise ValueError("Not an ISO 3166-1 alpha-2 country code.")
    return code


def parse_phone(value: str) -> str:
    """An international number (E.164, '+' and country code), normalised to ``+digits``."""
    digits = str(value).translate(_PHONE_STRIP)
    if not _E164_RE.match(digits):
        raise ValueError("Not an E.164 phone number (expected '+' then country code and number).")
    e164 = _valid_e164(digits)
    if e164 is None:
        raise ValueError("Not a valid phone number for its country code.")
    return e164


def _valid_e164(digits: str) -> str | None:
    """The number in E.164 form if it is valid, else None."""
    body = digits[1:]
    # Fast path: split the country code ourselves (cheaper than a full parse).
    # A national part starting with 0 (a trunk prefix written by habit, or
    # Italy's leading zero) takes the full parser, which knows which it is.
    for length in (1, 2, 3):
        code = int(body[:length])
        if code in phonenumberutil.COUNTRY_CODE_TO_REGION_CODE:
            national = body[length:]
            if national and national[0] != "0":
                number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
                return digits if phonenumbers.is_valid_number(number) else None
            break
    try:
        number = phonenumbers.parse(digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_passport(value: str) -> str:
    number = str(value).upper().translate(_PASSPORT_STRIP)
    if not PASSPORT_RE.match(number):
        raise ValueError("Passport numbers are 5 to 20 letters and digits.")
    return number


def parse_birth_date(value) -> date:
    born = value if isinstance(value, date) else parse_date(value)
    if born > date.today():
        raise ValueError("Date of birth is in the future.")
    if born < EARLIEST_BIRTH:
        raise ValueError("Date of birth is before 1900.")
    return born


def parse_date(value) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError("Not a date in ISO 8601 form (YYYY-MM-DD).") from None


def parse_isco(value) -> str:
    code = str(value).strip()
    if code not in isco_codes():
        raise ValueError("Not an ISCO-08 occupation code.")
    return code


@lru_cache(maxsize=1)
def isco_codes() -> frozenset[str]:
    text = resources.files("registry.data").joinpath("isco08.csv").read_text(encoding="utf-8")
    return frozenset(line.split(",", 1)[0] for line in text.splitlines()[1:] if line)


@lru_cache(maxsize=1)
def language_codes() -> frozenset[str]:
    codes = set()
    for language in pycountry.languages:
        codes.add(language.alpha_3)
        if hasattr(language, "alpha_2"):
            codes.add(language.alpha_2)
    return frozenset(codes)


def parse_language(value: str) -> str:
    code = str(value).strip().lower()
    if code not in language_codes():
        raise ValueError("Not an ISO 639-1 or 639-3 language code.")
    return code


def parse_email(value: str) -> str:
    email = str(value).strip()
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise ValueError("Not an email address.")
    return email


def parse_text(value, max_length: int = MAX_NAME, *, required: bool = False) -> str | None:
    """Strip; refuse control characters and over-long text; empty becomes None."""
    text = str(value).strip() if value is not None else ""
    if not text:
        if required:
            raise ValueError("Must not be empty.")
        return None
    if len(text) > max_length:
        raise ValueError(f"Longer than {max_length} characters.")
    if _CONTROL_RE.search(text):
        raise ValueError("Contains control characters.")
    return text


def parse_uuid(value) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise ValueError("Not a UUID.") from None


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError("Not a number.") from None


def parse_latitude(value) -> float:
    lat = _number(value)
    if not -90.0 <= lat <= 90.0:
        raise ValueError("Latitude must be between -90 and 90.")
    return lat


def parse_longitude(value) -> float:
    lon = _number(value)
    if not -180.0 <= lon <= 180.0:
        raise ValueError("Longitude must be between -180 and 180.")
    return lon


def check_contract(start: date | None, end: date | None) -> None:
    if start and end and end <= start:
        raise ValueError("Contract end must be after its start.")


def search_key(*names: str | None) -> str:
    """Lower-case ASCII of the names, for accent-, case- and script-tolerant search."""
    joined = " ".join(n for n in names if n)
    return " ".join(anyascii(joined).lower().replace("-", " ").split())
