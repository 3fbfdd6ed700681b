"""The nationals pages' forms: HTML fields to the API's input (loaded by the API's own schemas, so the rules
are one), and refusals back to the fields they concern.

Inputs are named by the path of the API field they fill (``deployment.city``, ``next_of_kin.phone``,
``phones.0``), so that a validation message ``{"deployment": {"city": [...]}}`` lands beside its input.
"""
from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources

import pycountry
from flask import current_app
from werkzeug.datastructures import MultiDict

from registry import validation
from registry.auth import visibility
from registry.auth.reach import Reach
from registry.errors import ApiError
from registry.nationals.models import (LEGAL_STATUSES, LOCATION_SOURCES, NATIONAL_STATUSES, SEXES, SOURCES,
                                       VULNERABILITIES)

PHONE_INPUTS = 3
TEXT_FIELDS = ("family_name", "given_names", "native_name", "sex", "date_of_birth", "nationality", "passport_number",
               "national_id_number", "email", "household_id", "source")
DEPLOYMENT_FIELDS = ("host_country", "city", "address", "employer", "occupation_isco", "sector", "contract_start",
                     "contract_end", "legal_status", "recruitment_agency")
KIN_FIELDS = ("name", "relation", "phone")
FILTERS = ("host_country", "city", "status", "vulnerability")
_SEPARATORS = re.compile(r"[,;\s]+")

SEX_LABELS = {"F": "Female", "M": "Male", "X": "Another / not stated"}
VULNERABILITY_LABELS = {"pregnant": "Pregnant", "chronic_illness": "Chronic illness", "disability": "Disability",
                        "minor": "Minor", "elderly": "Elderly", "other": "Other"}
LEGAL_STATUS_LABELS = {"documented": "Documented", "undocumented": "Undocumented", "unknown": "Unknown"}
STATUS_LABELS = {"abroad": "Abroad", "returned": "Returned", "missing": "Missing", "deceased": "Deceased",
                 "unverified": "Unverified (self-registered)"}
SOURCE_LABELS = {"departure_desk": "Departure desk", "embassy": "Embassy", "self_registration": "Self-registration",
                 "bulk_import": "Bulk import"}
LOCATION_SOURCE_LABELS = {"gps": "GPS", "geocoded_city": "city, from the gazetteer",
                          "geocoded_address": "address, geocoded", "country_centroid": "country only",
                          "self_report": "the person's own phone"}
WELFARE_LABELS = {"unknown": "Unknown", "contacted": "Contacted", "safe": "Safe",
                  "needs_assistance": "Needs assistance", "evacuated": "Evacuated", "repatriated": "Repatriated",
                  "missing": "Missing"}
CONSENT_LABELS = {"yes": "Given", "no": "Refused"}
# The label of every input of the registration form, by input name (also what the error summary names).
LABELS = {
    "family_name": "Family name", "given_names": "Given names", "native_name": "Name in native script",
    "sex": "Sex", "date_of_birth": "Date of birth", "nationality": "Nationality",
    "passport_number": "Passport number", "national_id_number": "National ID number", "email": "Email",
    "languages": "Languages", "vulnerabilities": "Vulnerabilities", "household_id": "Household", "source": "Source",
    **{f"phones.{i}": f"Phone {i + 1}" for i in range(PHONE_INPUTS)},
    "next_of_kin.name": "Next of kin: name", "next_of_kin.relation": "Next of kin: relation",
    "next_of_kin.phone": "Next of kin: phone", "consent.given": "Consent to be registered",
    "consent.method": "How consent was given", "deployment.host_country": "Host country",
    "deployment.city": "Host city", "deployment.address": "Address", "deployment.employer": "Employer",
    "deployment.occupation_isco": "Occupation (ISCO-08 code)", "deployment.sector": "Sector",
    "deployment.contract_start": "Contract start", "deployment.contract_end": "Contract end",
    "deployment.legal_status": "Legal status", "deployment.recruitment_agency": "Recruitment agency",
    "location.lat": "Latitude", "location.lon": "Longitude",
}
REASON_LABELS = {"same_names_and_birth_date": "same names and date of birth", "same_phone": "same phone number"}
assert set(SEX_LABELS) == set(SEXES) and set(VULNERABILITY_LABELS) == set(VULNERABILITIES)
assert set(LEGAL_STATUS_LABELS) == set(LEGAL_STATUSES) and set(STATUS_LABELS) == set(NATIONAL_STATUSES)
assert set(SOURCE_LABELS) == set(SOURCES) and set(LOCATION_SOURCE_LABELS) == set(LOCATION_SOURCES)


@lru_cache(maxsize=1)
def countries() -> tuple[tuple[str, str], ...]:
    """(ISO 3166-1 alpha-2, English name) of every country the API accepts, by name."""
    names = {c.alpha_2: getattr(c, "common_name", None) or c.name for c in pycountry.countries}
    names.update(validation.EXTRA_COUNTRIES)
    return tuple(sorted(((code, names[code]) for code in validation.COUNTRY_CODES), key=lambda c: c[1]))


def country_name(code: str | None) -> str:
    return dict(countries()).get(code or "", code or "")


@lru_cache(maxsize=1)
def occupations() -> tuple[tuple[str, str], ...]:
    """(ISCO-08 unit group code, title): the occupations a registration names."""
    text = resources.files("registry.data").joinpath("isco08.csv").read_text(encoding="utf-8")
    return tuple((row["code"], row["title"]) for row in csv.DictReader(io.StringIO(text)) if row["level"] == "4")


def occupation_title(code: str | None) -> str:
    return dict(occupations()).get(code or "", "")


def distance(metres: float | None) -> str:
    """A precision or distance for people: "50 m", "12 km"."""
    if metres is None:
        return ""
    return f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:.0f} km"


def welfare_label(status: str | None) -> str:
    return WELFARE_LABELS.get(status or "", status or "")


def host_countries(user) -> tuple[tuple[str, str], ...]:
    """The host countries ``user`` may register in (an embassy officer: their jurisdiction)."""
    reach = Reach.of(user)
    return countries() if reach.is_everywhere else tuple(c for c in countries() if c[0] in reach.countries)


def field_id(name: str) -> str:
    return "f-" + name.replace(".", "-").replace("_", "-")


def flatten(messages, prefix: str = "") -> dict[str, list[str]]:
    """Nested marshmallow-style messages as ``{"deployment.city": [...], "phones.0": [...]}``."""
    if not isinstance(messages, dict):
        return {prefix or "_schema": [str(m) for m in (messages if isinstance(messages, list) else [messages])]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        for name, found in flatten(value, path).items():
            flat.setdefault(name, []).extend(found)
    return flat


class Registration:
    """The registration form: what was typed (kept to show again), the API body made of it, and the
    refusals placed beside their inputs."""

    def __init__(self, values: MultiDict, user):
        self.values = values
        self.user = user
        self._phone_inputs: list[int] = []  # the input each phone of the body came from

    @classmethod
    def blank(cls, args: MultiDict, user) -> Registration:
        """A new form: the service's nationality, the officer's host country when they have one, and a
        household to join when the link said so."""
        values = MultiDict({"nationality": current_app.config["REGISTRY_NATIONALITY"]})
        hosts = host_countries(user)
        if len(hosts) == 1:
            values["deployment.host_country"] = hosts[0][0]
        try:
            values["household_id"] = str(uuid.UUID(args.get("household_id", "")))
        except ValueError:
            pass
        return cls(values, user)

    def _text(self, name: str) -> str:
        return (self.values.get(name) or "").strip()

    def body(self) -> dict:
        """The POST /api/v1/nationals body of this form (blank inputs left out)."""
        body: dict = {}
        for name in TEXT_FIELDS:
            if self._text(name):
                body[name] = self._text(name)
        phones = []
        for index in range(PHONE_INPUTS):
            if self._text(f"phones.{index}"):
                phones.append(self._text(f"phones.{index}"))
                self._phone_inputs.append(index)
        if phones:
            body["phones"] = phones
        languages = [code for code in _SEPARATORS.split(self._text("languages")) if code]
        if languages:
            body["languages"] = languages
        vulnerabilities = self.values.getlist("vulnerabilities")
        if vulnerabilities:
            body["vulnerabilities"] = vulnerabilities
        kin = {name: self._text(f"next_of_kin.{name}") for name in KIN_FIELDS if self._text(f"next_of_kin.{name}")}
        if kin:
            body["next_of_kin"] = kin
        consent = self._text("consent.given")
        if consent:
            body["consent"] = {"given": consent == "yes", "recorded_at": datetime.now(timezone.utc).isoformat()}
            if self._text("consent.method"):
                body["consent"]["method"] = self._text("consent.method")
        body["deployment"] = {name: self._text(f"deployment.{name}") for name in DEPLOYMENT_FIELDS
                              if self._text(f"deployment.{name}")}
        if self._text("location.lat") or self._text("location.lon"):
            body["location"] = {name: self._text(f"location.{name}") for name in ("lat", "lon")
                                if self._text(f"location.{name}")}
        return body

    def field_errors(self, error: ApiError | None) -> dict[str, list[str]]:
        """The refusal's messages by input name (``_schema``: the whole form)."""
        if error is None or not error.errors:
            return {}
        flat = {}
        for name, messages in flatten(error.errors).items():
            if name.startswith("phones.") and name.split(".")[1].isdigit():
                index = int(name.split(".")[1])
                name = f"phones.{self._phone_inputs[index]}" if index < len(self._phone_inputs) else "phones.0"
            elif name.startswith(("languages.", "vulnerabilities.")):
                name = name.split(".")[0]
            elif name == "consent.recorded_at":
                name = "consent.given"
            elif name not in self.input_names():
                name = name.split(".")[0] if name.split(".")[0] in self.input_names() else "_schema"
            flat.setdefault(name, []).extend(messages)
        return flat

    @staticmethod
    def input_names() -> frozenset[str]:
        return frozenset(LABELS)

    def confirmed(self) -> set[uuid.UUID]:
        """The possible duplicates the person saw and chose to register anyway ("Register anyway")."""
        if self.values.get("confirm") != "yes":
            return set()
        found = set()
        for text in (self.values.get("confirmed_duplicates") or "").split(","):
            try:
                found.add(uuid.UUID(text.strip()))
            except ValueError:
                continue
        return found

    def context(self) -> dict:
        """What the template needs to show the form (again)."""
        return {"values": self.values, "form": self, "countries": countries(),
                "host_countries": host_countries(self.user), "occupations": occupations(),
                "may_set_source": self.user.role == "admin", "labels": LABELS, "form_id": field_id,
                "phone_inputs": PHONE_INPUTS, "country_name": country_name, "reason_text": reason_text,
                "sex_options": tuple(SEX_LABELS.items()), "vulnerability_options": tuple(VULNERABILITY_LABELS.items()),
                "legal_status_options": tuple(LEGAL_STATUS_LABELS.items()),
                "consent_options": tuple(CONSENT_LABELS.items()), "source_options": tuple(SOURCE_LABELS.items())}


def reason_text(reasons) -> str:
    """Why a registered person may be the same one, in words."""
    return " and ".join(REASON_LABELS.get(r, r) for r in reasons)


def list_filters(values: MultiDict, role: str) -> dict[str, str]:
    """The filters given (blank ones left out), as the API's list query names them."""
    filters = {name: values.get(name, "").strip() for name in FILTERS if values.get(name, "").strip()}
    if "vulnerability" in filters:
        visibility.check_filters(role, {"vulnerability": "vulnerabilities"})
    return filters


def may_filter_by_vulnerability(role: str) -> bool:
    return "vulnerabilities" not in visibility.hidden_from(role)
