"""Registering, finding, changing and erasing nationals.

Services flush, never commit. Every query that returns nationals starts from
``visible_nationals(user)``: the one place where a caller's reach is decided.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from flask import current_app
from geoalchemy2.shape import to_shape
from sqlalchemy import LargeBinary, Select, Uuid, and_, bindparam, cast, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from registry import geo, ratelimit, validation
from registry.audit import services as audit
from registry.auth import visibility
from registry.auth.reach import Reach
from registry.crypto import DecryptionError, keyring
from registry.errors import DuplicatePassport, Forbidden, InvalidLocation, NotFound, TooManyRequests, Unprocessable
from registry.extensions import db
from registry.geo import point_wkt
from registry.geocoding import gazetteer
from registry.nationals import schemas
from registry.nationals.models import Country, Deployment, LocationReport, National, NextOfKin
from registry.pagination import MAX_OFFSET, Keyset, decode_offset, encode_cursor, keyset_page, offset_page, timestamp

GPS_DEFAULT_PRECISION_M = 50.0
PERSONAL_FIELDS = ("family_name", "given_names", "native_name", "sex", "date_of_birth", "passport_ciphertext",
                   "passport_index", "national_id_ciphertext", "national_id_index", "email", "consent")
# Identity document fields of the API, and the column prefix each is stored under (encrypted).
DOCUMENTS = {"passport_number": "passport", "national_id_number": "national_id"}
# Fields only some roles may set; the others get a 403 naming the field (no silent mass assignment).
RESTRICTED_WRITES = {"source": frozenset({"admin"})}


@lru_cache(maxsize=2)
def _visible_query(jurisdiction_only: bool) -> Select:
    query = select(National).where(National.erased_at.is_(None))
    if jurisdiction_only:
        query = query.where(National.jurisdiction_country.in_(bindparam("jurisdiction", expanding=True)))
    return query


def visible_nationals(user) -> Select:
    """Nationals ``user`` may see: not erased, and within their reach (``registry.auth.reach``)."""
    reach = Reach.of(user)
    if reach.is_everywhere:
        return _visible_query(False)
    return _visible_query(True).params(jurisdiction=list(reach.countries))


def visible_clause(user):
    """The same rule as ``visible_nationals``, as a condition on ``National`` for joins."""
    return and_(National.erased_at.is_(None), Reach.of(user).clause(National.jurisdiction_country))


@lru_cache(maxsize=2)
def _visible_by_id(jurisdiction_only: bool) -> Select:
    # Built once: on the hot path, building a statement costs more than running it.
    return _visible_query(jurisdiction_only).where(National.id == bindparam("national_id"))


def _may_write_in(user, country: str) -> None:
    reach = Reach.of(user)
    if not reach.is_everywhere and country not in reach.countries:
        raise Forbidden("Embassy officers register and update nationals only in their jurisdiction.")


def get_national(national_id: uuid.UUID, user) -> National:
    """:raises NotFound: unknown, erased, or outside the caller's reach (never revealed)."""
    reach = Reach.of(user)
    national = db.session.scalar(_visible_by_id(not reach.is_everywhere),
                                 {"national_id": national_id, "jurisdiction": list(reach.countries or ())})
    if national is None:
        raise NotFound("No such national.")
    return national


def country_fallback(country: str) -> tuple[str, float] | None:
    """The reference point inside ``country`` and its precision, when geodata has one."""
    row = db.session.execute(
        select(func.ST_AsText(Country.label_point), Country.precision_m).where(Country.alpha2 == country)
    ).first()
    return (row[0], float(row[1])) if row else None


def _household(data: dict, user) -> uuid.UUID:
    household_id = data.get("household_id")
    if household_id is None:
        return uuid.uuid4()
    exists = db.session.scalar(
        visible_nationals(user).with_only_columns(National.id).where(National.household_id == household_id).limit(1))
    if exists is None:
        raise Unprocessable("Unknown household.",
                            errors={"household_id": ["No registered national belongs to this household."]})
    return household_id


def _check_writable(data: dict, user) -> None:
    refused = {field: ["Your role may not set this field."] for field, roles in RESTRICTED_WRITES.items()
               if field in data and user.role not in roles}
    if refused:
        raise Forbidden("The request sets fields your role may not write.", errors=refused)


def document_numbers(national: National) -> dict[str, str | None]:
    """The decrypted passport and national ID numbers of ``national``."""
    ring = keyring()
    numbers = {}
    for field, column in DOCUMENTS.items():
        stored = getattr(national, f"{column}_ciphertext")
        numbers[field] = ring.decrypt(column, national.id, stored) if stored is not None else None
    return numbers


def _store_documents(national: National, data: dict) -> None:
    """Encrypt the document numbers given in ``data`` (popped from it) into ``national``, and index them.

    A new record, or one whose indexes use an older index key, gets both indexes under the current key
    (the number not given is decrypted for it), so its ``index_key_version`` holds for both.
    """
    ring = keyring()
    given = {field: data.pop(field) for field in DOCUMENTS if field in data}
    if national.index_key_version == ring.index_current:
        numbers = given
    else:
        numbers = document_numbers(national) | given
    for field, column in DOCUMENTS.items():
        if field in given:
            number = given[field]
            setattr(national, f"{column}_ciphertext", ring.encrypt(column, national.id, number) if number else None)
        if field in numbers:
            number = numbers[field]
            setattr(national, f"{column}_index", ring.blind_index(column, number) if number else None)
    national.index_key_version = ring.index_current


def _consent_as_json(data: dict) -> None:
    """The consent record of ``data`` as its JSON column stores it (the time as ISO 8601 text)."""
    consent = data.get("consent")
    if consent and isinstance(consent.get("recorded_at"), datetime):
        data["consent"] = {**consent, "recorded_at": consent["recorded_at"].isoformat()}


def _check_passport(nationality: str, passport: str | None, user, *, exclude: uuid.UUID | None = None) -> None:
    """:raises DuplicatePassport: a record of ``nationality`` has ``passport`` under any index key."""
    if not passport:
        return
    # Asked of the database function, not a query: it sees every jurisdiction (row-level security keeps an
    # embassy officer's queries to theirs) and answers an id, never a row (migration 0010).
    existing = db.session.scalar(select(func.registered_passport(
        nationality, cast(keyring().blind_indexes("passport", passport), ARRAY(LargeBinary)),
        cast(exclude, Uuid))))
    if existing is None:
        return
    # A registration that meets a registered passport is a passport lookup, whoever's record it is: it counts
    # toward the same per-user limit as passport searches, and the trail names the record it met.
    count_passport_lookup(user)
    visible = db.session.scalar(visible_nationals(user).with_only_columns(National.id)
                                .where(National.id == existing))
    audit.note(object_type="national", object_ids=[existing], details={"passport_match": True,
                                                                       "visible": visible is not None})
    extra = {"existing_id": str(existing)} if visible else {}
    raise DuplicatePassport("This passport number is already registered for this nationality.",
                            errors={"passport_number": ["Already registered."]}, **extra)


def count_passport_lookup(user) -> None:
    """One more passport lookup by ``user`` (a search by passport, or a registration or change that met a
    registered passport): at most REGISTRY_PASSPORT_LOOKUPS_PER_MINUTE. :raises TooManyRequests:"""
    wait = ratelimit.hit(f"passport:{user.id}", current_app.config["REGISTRY_PASSPORT_LOOKUPS_PER_MINUTE"])
    if wait:
        raise TooManyRequests("Too many passport lookups; wait and retry.", retry_after_s=wait)


def possible_duplicates(national: National, user) -> list[dict]:
    """Same names and birth date, or a shared phone: reported, not refused."""
    return _duplicates(national.date_of_birth, national.search_name, national.phones, user, exclude=national.id)


_DUPLICATE_IDS = text("SELECT national_id, same_person, same_phone FROM duplicate_national_ids(:birth, :key, "
                      "CAST(:phones AS varchar[]), :countries, :excluded, 20)")


def _duplicates(date_of_birth, search_name: str, phones, user, *, exclude: uuid.UUID | None = None) -> list[dict]:
    """Visible nationals with these names and birth date, or sharing one of ``phones``: [{id, reasons}], at most
    20. Found by ``duplicate_national_ids`` (migration 0026: by the indexes whatever the caller's scope and the
    registry's size, the caller's reach applied inside); no row is read."""
    found = []
    for other_id, same_person, same_phone in db.session.execute(_DUPLICATE_IDS, {
            "birth": date_of_birth, "key": search_name, "phones": list(phones or []),
            "countries": Reach.of(user).to_params(), "excluded": exclude}).all():
        reasons = (["same_names_and_birth_date"] if same_person else []) + (["same_phone"] if same_phone else [])
        found.append({"id": other_id, "reasons": reasons})
    return found


def _check_new(data: dict, user) -> None:
    """What refuses a registration before anything is stored (``data`` as NationalCreate loads it).
    :raises DuplicatePassport, Forbidden, InvalidLocation:"""
    host = data["deployment"]["host_country"]
    _may_write_in(user, host)
    _check_writable(data, user)
    _check_passport(data["nationality"], data.get("passport_number"), user)
    location_data = data.get("location")
    if location_data:
        problem = geo.check_in_country(location_data["lon"], location_data["lat"], host)
        if problem:
            raise InvalidLocation(problem.message, errors={"location": {problem.field: [problem.message]}})


def check_registration(data: dict, user) -> list[dict]:
    """Before registering ``data`` (as NationalCreate loads it; left unchanged): what ``create_national``
    would refuse, raised the same way, then the likely duplicates it would report ([{id, reasons}], visible
    to ``user``), so that a person can look at them before saving.
    :raises DuplicatePassport, Forbidden, InvalidLocation:"""
    _check_new(data, user)
    search_name = validation.search_key(data["family_name"], data["given_names"], data.get("native_name"))
    return _duplicates(data["date_of_birth"], search_name, list(dict.fromkeys(data.get("phones") or [])), user)


def create_national(data: dict, user, *, source: str | None = None) -> tuple[National, list[dict], dict | None]:
    """Register a national with its deployment and a first location; (national, likely duplicates, geocoding).

    A given point must be in the host country. Without one, the host city is
    geocoded (offline gazetteer); without a city, or when it is not found,
    the host country's reference point is used.
    :raises DuplicatePassport, Forbidden, InvalidLocation, Unprocessable:
    """
    _check_new(data, user)
    deployment_data = data.pop("deployment")
    location_data = data.pop("location", None)
    kin_data = data.pop("next_of_kin", None)
    host = deployment_data["host_country"]

    national = National(id=uuid.uuid4())
    _store_documents(national, data)
    _consent_as_json(data)
    for key, value in data.items():
        if key != "household_id":
            setattr(national, key, value)
    national.household_id = _household(data, user)
    national.source = source or data.get("source") or ("embassy" if user.role == "embassy" else "departure_desk")
    national.phones = list(dict.fromkeys(data.get("phones") or []))
    national.vulnerabilities = sorted(set(data.get("vulnerabilities") or []))
    national.search_name = validation.search_key(national.family_name, national.given_names, national.native_name)
    national.jurisdiction_country = host
    national.created_by = user.id
    if national.status == "returned":
        national.returned_at = func.now()
    if kin_data:
        national.next_of_kin = NextOfKin(**kin_data)
    db.session.add(national)
    db.session.flush()  # the deployment's relationship is view-only: insert the national first
    db.session.add(Deployment(national_id=national.id, is_current=True, **deployment_data))
    db.session.flush()

    geocoding = None
    if location_data:
        _add_location(national, location_data, default_source="gps")
    else:
        geocoding = _locate_by_city(national, host, deployment_data.get("city"))
    db.session.flush()
    db.session.refresh(national)
    return national, possible_duplicates(national, user), geocoding


def _locate_by_city(national: National, host: str, city: str | None) -> dict | None:
    """Geocode the host city (else the country's reference point); what was matched, for the answer."""
    match = gazetteer().lookup(host, city) if city else None
    if match is not None:
        place = match.place
        _add_location(national, {"lat": place.lat, "lon": place.lon, "precision_m": place.precision_m},
                      default_source="geocoded_city")
        return {"query": city, "matched": place.as_dict(), "fuzzy": match.fuzzy,
                "alternatives": [p.as_dict() for p in match.alternatives]}
    fallback = country_fallback(host)
    if fallback:
        _add_location(national, {"wkt": fallback[0], "precision_m": fallback[1]}, default_source="country_centroid")
    return {"query": city, "matched": None, "fuzzy": False, "alternatives": []} if city else None


def _add_location(national: National, data: dict, *, default_source: str,
                  country: str | None = None) -> LocationReport:
    """Record a report; when it is the newest, it becomes the current location (and, with
    ``country``, the national's jurisdiction follows it: SPEC §4)."""
    wkt = data.get("wkt") or point_wkt(data["lon"], data["lat"])
    source = data.get("source") or default_source
    precision = data.get("precision_m")
    if precision is None:
        precision = GPS_DEFAULT_PRECISION_M if source == "gps" else 1000.0
    reported_at = data.get("reported_at") or datetime.now(timezone.utc)
    report = LocationReport(national_id=national.id, geom=f"SRID=4326;{wkt}", source=source,
                            precision_m=precision, reported_at=reported_at)
    db.session.add(report)
    # The newest report is the current location; an older one only joins the history.
    current = {"location": f"SRID=4326;{wkt}", "location_source": source, "location_precision_m": precision,
               "location_reported_at": reported_at, "updated_at": func.now()}
    if country:
        current["jurisdiction_country"] = country
    db.session.execute(
        update(National).where(National.id == national.id,
                               or_(National.location_reported_at.is_(None),
                                   National.location_reported_at <= reported_at))
        .values(**current).execution_options(synchronize_session=False)
    )
    db.session.flush()
    return report


def add_location(national_id: uuid.UUID, data: dict, user) -> National:
    """Record a location report; the national, with its current location, is returned.

    The point must be on land. When it becomes the current location, the national's
    jurisdiction is the country it is in (a national who fled across a border is the
    new embassy's); an embassy officer may only record points in their own jurisdiction.
    :raises NotFound, Forbidden, InvalidLocation:
    """
    national = get_national(national_id, user)
    _may_write_in(user, national.jurisdiction_country)
    country, problem = geo.check_on_land(data["lon"], data["lat"])
    if problem:
        raise InvalidLocation(problem.message, errors={problem.field: [problem.message]})
    if not Reach.of(user).is_everywhere and country not in Reach.of(user).countries:
        raise Forbidden(f"The point is in {country}, outside your jurisdiction: the embassy answering for "
                        f"{country}, or a desk officer, records it.")
    _add_location(national, data, default_source="gps", country=country)
    db.session.refresh(national)
    return national


def add_self_report(national: National, lat: float, lon: float, precision_m: float) -> str | None:
    """Record a point the person gave from their own phone (a check-in, SPEC §10) as a ``self_report``; the
    country it is in, or None. Across a border it moves their jurisdiction as any newer location does
    (SPEC §4: the person fled); a point at sea is kept (it may be a boat) without moving it."""
    country = geo.country_at(lon, lat)
    _add_location(national, {"lat": lat, "lon": lon, "precision_m": precision_m}, default_source="self_report",
                  country=country)
    return country


def create_self_registration(data: dict, host: str, *, location: dict | None = None,
                             place: str | None = None) -> tuple[National, uuid.UUID | None]:
    """Register a person who registered themselves during a crisis (SPEC §10): status ``unverified``, source
    ``self_registration``, the service's nationality, nobody as creator, host country ``host``.

    ``data``: ``family_name``, ``given_names``, ``date_of_birth``, optional ``sex``, ``phones``,
    ``passport_number``, ``national_id_number``. ``location`` (``lat``, ``lon``, ``precision_m``) is the phone's
    point (a ``self_report``); without it ``place`` (the person's words) is looked up in the host country's
    gazetteer, else the country's reference point is used. Never merged, never refused for a registered
    passport: the number is kept encrypted without its index and the holder's id is returned (for the
    verification queue), so that an anonymous form learns nothing of other records.
    → (the national, the id of the record already holding the passport or None).
    """
    nationality = current_app.config["REGISTRY_NATIONALITY"]
    national = National(id=uuid.uuid4(), nationality=nationality, status="unverified", source="self_registration",
                        household_id=uuid.uuid4(), jurisdiction_country=host)
    passport = data.get("passport_number")
    holder = None
    if passport:
        holder = db.session.scalar(select(func.registered_passport(
            nationality, cast(keyring().blind_indexes("passport", passport), ARRAY(LargeBinary)), cast(None, Uuid))))
    _store_documents(national, data)
    if holder is not None:
        national.passport_index = None  # the officer settles it (``claim_passport``, a merge, a rejection)
    for key in ("family_name", "given_names", "sex", "date_of_birth"):
        setattr(national, key, data.get(key))
    national.phones = list(dict.fromkeys(data.get("phones") or []))
    national.search_name = validation.search_key(national.family_name, national.given_names)
    db.session.add(national)
    db.session.flush()
    db.session.add(Deployment(national_id=national.id, is_current=True, host_country=host, address=place))
    db.session.flush()
    if location:
        _add_location(national, location, default_source="self_report", country=host)
    else:
        _locate_by_city(national, host, place)
    db.session.flush()
    db.session.refresh(national)
    return national, holder


def claim_passport(national: National, user) -> None:
    """Index the passport number ``national`` holds without an index (a self-registration that met a
    registered passport), now that an officer vouches for the record.
    :raises DuplicatePassport: another record still holds it (naming it when ``user`` may see it)."""
    if national.passport_ciphertext is None or national.passport_index is not None:
        return
    passport = document_numbers(national)["passport_number"]
    _check_passport(national.nationality, passport, user, exclude=national.id)
    _store_documents(national, {"passport_number": passport})


def likely_duplicates(national: National, user) -> list[dict]:
    """``possible_duplicates``, and the visible records sharing its passport (same nationality) or national ID
    number (under any index key): [{id, reasons}] for an officer to compare (the verification queue)."""
    found = {d["id"]: d for d in possible_duplicates(national, user)}
    ring = keyring()
    for field, number in document_numbers(national).items():
        if not number:
            continue
        column = DOCUMENTS[field]
        query = (visible_nationals(user).with_only_columns(National.id)
                 .where(getattr(National, f"{column}_index").in_(ring.blind_indexes(column, number)),
                        National.id != national.id))
        if field == "passport_number":
            query = query.where(National.nationality == national.nationality)
        for other in db.session.scalars(query.limit(20)):
            found.setdefault(other, {"id": other, "reasons": []})["reasons"].append(f"same_{field}")
    return list(found.values())


def update_national(national_id: uuid.UUID, data: dict, user) -> National:
    """Apply a partial update; ``deployment`` fields change the current deployment."""
    national = get_national(national_id, user)
    _may_write_in(user, national.jurisdiction_country)
    _check_writable(data, user)
    deployment_data = data.pop("deployment", None)
    kin_data = data.pop("next_of_kin", "absent")
    if "household_id" in data:
        data["household_id"] = (_household(data, user) if data["household_id"] is not None
                                else uuid.uuid4())
    if "passport_number" in data or "nationality" in data:
        passport = data["passport_number"] if "passport_number" in data else \
            document_numbers(national)["passport_number"]
        _check_passport(data.get("nationality", national.nationality), passport, user, exclude=national.id)
    _store_documents(national, data)
    _consent_as_json(data)
    if "status" in data and data["status"] != national.status:
        national.returned_at = func.now() if data["status"] == "returned" else None
    for key, value in data.items():
        setattr(national, key, value)
    if "phones" in data:
        national.phones = list(dict.fromkeys(data["phones"] or []))
    if "vulnerabilities" in data:
        national.vulnerabilities = sorted(set(data["vulnerabilities"] or []))
    national.search_name = validation.search_key(national.family_name, national.given_names, national.native_name)
    if kin_data != "absent":
        national.next_of_kin = NextOfKin(**kin_data) if kin_data else None
    if deployment_data:
        deployment = national.deployment
        merged = {c: getattr(deployment, c) for c in ("contract_start", "contract_end")} | deployment_data
        try:
            validation.check_contract(merged["contract_start"], merged["contract_end"])
        except ValueError as exc:
            raise Unprocessable("One or more fields are invalid.",
                                errors={"deployment": {"contract_end": [str(exc)]}}) from None
        if "host_country" in deployment_data:
            _may_write_in(user, deployment_data["host_country"])
            if national.location_source in (None, "country_centroid"):
                national.jurisdiction_country = deployment_data["host_country"]
        db.session.execute(update(Deployment).where(Deployment.id == deployment.id).values(**deployment_data))
    national.updated_at = func.now()
    db.session.flush()
    db.session.refresh(national)
    return national


def erase_national(national_id: uuid.UUID, user) -> None:
    """Erase personal data, keeping a stub (id, nationality, dates) for the audit trail."""
    national = get_national(national_id, user)
    _may_write_in(user, national.jurisdiction_country)
    _erase(national)


# What other features keep about a person and must forget with them (exposure rows hold a location, welfare
# records free-text notes): each registers here, so that this module needs none of them.
ERASURE_HOOKS: list = []


def on_erasure(forget):
    """Register ``forget(national_id)``, run in the erasing transaction (a decorator)."""
    ERASURE_HOOKS.append(forget)
    return forget


def _erase(national: National) -> None:
    for field in PERSONAL_FIELDS:
        setattr(national, field, None)
    national.phones, national.languages, national.vulnerabilities = [], [], []
    national.search_name = ""
    national.location = None
    national.location_source = national.location_precision_m = national.location_reported_at = None
    national.next_of_kin = None
    national.erased_at = func.now()
    db.session.execute(delete(LocationReport).where(LocationReport.national_id == national.id))
    for forget in ERASURE_HOOKS:
        forget(national.id)
    db.session.execute(update(Deployment).where(Deployment.national_id == national.id)
                       .values(city=None, address=None, employer=None, recruitment_agency=None))
    db.session.flush()


def purge_returned(older_than_days: int, batch: int = 500) -> list[uuid.UUID]:
    """Erase up to ``batch`` nationals returned more than ``older_than_days`` ago; their ids.

    Called by the retention task with the service's own scope; the stubs stay.
    """
    cutoff = func.now() - timedelta(days=older_than_days)
    nationals = db.session.scalars(
        select(National).where(National.status == "returned", National.returned_at < cutoff,
                               National.erased_at.is_(None)).order_by(National.returned_at).limit(batch)
    ).all()
    for national in nationals:
        _erase(national)
    return [n.id for n in nationals]


_OLDEST_FIRST = Keyset((National.created_at, National.id), (timestamp, uuid.UUID))


def _filtered(query: Select, *, host_country=None, city=None, status=None, vulnerability=None) -> Select:
    """``query`` of nationals narrowed by the filters of lists and searches (current deployment, status,
    vulnerability)."""
    if host_country or city:
        query = query.join(Deployment, and_(Deployment.national_id == National.id, Deployment.is_current))
        if host_country:
            query = query.where(Deployment.host_country == host_country)
        if city:
            query = query.where(func.lower(Deployment.city) == city.lower())
    if status:
        query = query.where(National.status == status)
    if vulnerability:
        query = query.where(National.vulnerabilities.contains([vulnerability]))
    return query


def list_nationals(user, *, host_country=None, city=None, status=None, vulnerability=None,
                   limit: int = 100, cursor: str | None = None) -> dict:
    query = _filtered(visible_nationals(user), host_country=host_country, city=city, status=status,
                      vulnerability=vulnerability)
    return keyset_page(query, _OLDEST_FIRST, limit=limit, cursor=cursor, key=lambda n: (n.created_at.isoformat(), n.id))


def search_nationals(user, *, q=None, passport_number=None, host_country=None, city=None, status=None,
                     vulnerability=None, limit=100, cursor=None) -> dict:
    """Find nationals by name (accent-, case-, order- and script-tolerant) or exact passport, within the
    filters of ``list_nationals``."""
    if q and not passport_number:
        return _search_by_name(user, validation.search_key(q), host_country=host_country, city=city,
                               status=status, vulnerability=vulnerability, limit=limit, cursor=cursor)
    query = _filtered(visible_nationals(user), host_country=host_country, city=city, status=status,
                      vulnerability=vulnerability)
    if passport_number:
        query = query.where(National.passport_index.in_(keyring().blind_indexes("passport", passport_number)))
    order = (National.created_at, National.id)
    if q:
        key = validation.search_key(q)
        score = func.word_similarity(key, National.search_name)
        # ``%>`` uses the trigram index; every word of the query must be close to some word of the name.
        query = query.where(National.search_name.op("%>")(key))
        order = (score.desc(), National.id)
    return {**offset_page(query, order, limit=limit, cursor=cursor), "total_exact": True}


_SEARCH_IDS = text("SELECT national_id, total FROM search_national_ids(:key, :countries, :host_country, :city, "
                   ":status, :vulnerability, :limit, :offset, CAST(:min_score AS real))")
# A name matches a search when its word similarity to the key is at least MATCH_SCORE (pg_trgm's default). The
# names at least CLOSE_SCORE similar are read first (``_search_by_name``).
MATCH_SCORE = 0.6
CLOSE_SCORE = 0.9


def _search_by_name(user, key: str, *, limit: int, cursor: str | None, **filters) -> dict:
    """A page of the nationals whose names match ``key``, best first, as ``offset_page`` pages: the matching
    ids from ``search_national_ids`` (migrations 0023 and 0030: the trigram index, which row-level security
    would forbid an embassy officer's query, with the caller's reach applied inside), then their rows read as
    any other (the query layer and the policies again).

    Close names first: every name at least ``CLOSE_SCORE`` similar ranks before every other match, so when
    they fill the page (and one more is left) they are the page, and ``total`` is their number, a lower bound
    (``total_exact`` false). At ten million nationals a common name has 250,000 matches and a few thousand
    close ones: scoring them all took 2-2.8 s a search, the close ones a fraction of it (``bench/api.py``).
    Otherwise the page and the exact total come from every match."""
    offset = decode_offset(cursor)
    params = {"key": key, "countries": Reach.of(user).to_params(), **filters, "limit": limit + 1, "offset": offset}
    found = db.session.execute(_SEARCH_IDS, {**params, "min_score": CLOSE_SCORE}).all()
    exact = len(found) <= limit
    if exact:
        found = db.session.execute(_SEARCH_IDS, {**params, "min_score": MATCH_SCORE}).all()
    if found:
        total = found[0].total
    else:  # past the last page: the number of matches still
        first = db.session.execute(_SEARCH_IDS, {**params, "limit": 1, "offset": 0, "min_score": MATCH_SCORE}).first()
        total = first.total if first else 0
    ids = [row.national_id for row in found]
    rows = {n.id: n for n in db.session.scalars(visible_nationals(user).where(National.id.in_(ids)))} if ids else {}
    items = [rows[i] for i in ids if i in rows]
    more = len(found) > limit and offset + limit < MAX_OFFSET
    return {"items": items[:limit], "total": total, "total_exact": exact,
            "next_cursor": encode_cursor(offset + limit) if more else None}


def location_of(national: National) -> dict | None:
    if national.location is None:
        return None
    point = to_shape(national.location)
    return {"lat": point.y, "lon": point.x, "source": national.location_source,
            "precision_m": national.location_precision_m, "reported_at": national.location_reported_at}


# ---------------------------------------------------------------------- a record as a role sees it

_RECORD_COLUMNS = tuple(c for c in schemas.NationalOut._declared_fields
                        if c not in ("deployment", "location", "next_of_kin", *DOCUMENTS))
_DEPLOYMENT_COLUMNS = tuple(schemas.DeploymentOut._declared_fields)


def as_seen_by(national: National, role: str, *, documents: bool = True) -> dict:
    """``national`` as ``role`` may see it, as GET /nationals/{id} shows it: without the fields hidden from
    the role (``registry.auth.visibility``); with ``documents``, the document numbers decrypted."""
    data = {c: getattr(national, c) for c in visibility.visible(role, _RECORD_COLUMNS)}
    data["deployment"] = _deployment_as_seen_by(national.deployment, role) if national.deployment else None
    data["next_of_kin"] = national.next_of_kin
    data["location"] = location_of(national)
    if documents:
        data.update(visibility.strip(role, document_numbers(national)))
    return data


def _deployment_as_seen_by(deployment: Deployment, role: str) -> dict:
    return {c: getattr(deployment, c) for c in visibility.visible(role, _DEPLOYMENT_COLUMNS)}


def deployments_of(national: National, role: str) -> list[dict]:
    """Every deployment of ``national`` (a visible one: ``get_national``), the current first, then newest
    first, as ``role`` may see them, each with ``is_current`` and ``created_at``."""
    rows = db.session.scalars(select(Deployment).where(Deployment.national_id == national.id)
                              .order_by(Deployment.is_current.desc(), Deployment.created_at.desc()))
    return [_deployment_as_seen_by(d, role) | {"is_current": d.is_current, "created_at": d.created_at}
            for d in rows]


def location_history(national: National) -> list[dict]:
    """The location reports of ``national`` (a visible one), newest first: lat, lon, source, precision_m,
    reported_at."""
    rows = db.session.execute(
        select(func.ST_Y(LocationReport.geom), func.ST_X(LocationReport.geom), LocationReport.source,
               LocationReport.precision_m, LocationReport.reported_at)
        .where(LocationReport.national_id == national.id)
        .order_by(LocationReport.reported_at.desc(), LocationReport.id.desc())).all()
    return [{"lat": lat, "lon": lon, "source": source, "precision_m": precision, "reported_at": at}
            for lat, lon, source, precision, at in rows]


def household_members(national: National, user, limit: int = 50) -> list[National]:
    """The other nationals of ``national``'s household that ``user`` may see, oldest registration first."""
    return list(db.session.scalars(
        visible_nationals(user).where(National.household_id == national.household_id, National.id != national.id)
        .order_by(National.created_at, National.id).limit(limit)))


def visible_by_ids(ids, user) -> list[National]:
    """The nationals of ``ids`` that ``user`` may see, in the order of ``ids`` (the others left out)."""
    ids = list(ids)
    if not ids:
        return []
    found = {n.id: n for n in db.session.scalars(visible_nationals(user).where(National.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def reencrypt_documents(batch: int = 2000, progress=None) -> int:
    """Rewrite every document number not encrypted under the current key; how many records.

    Commits batch by batch (a rerun continues where it stopped). The blind
    indexes do not change: they use their own key.
    """
    ring = keyring()
    current = ring.current
    stale = or_(func.get_byte(National.passport_ciphertext, 0) != current,
                func.get_byte(National.national_id_ciphertext, 0) != current)
    total, after = 0, uuid.UUID(int=0)
    while True:
        rows = db.session.execute(
            select(National.id, National.passport_ciphertext, National.national_id_ciphertext)
            .where(stale, National.id > after).order_by(National.id).limit(batch)).all()
        if not rows:
            return total
        updates = []
        for national_id, passport, number in rows:
            updates.append({
                "national_id": national_id,
                "passport": ring.encrypt("passport", national_id, ring.decrypt("passport", national_id, passport))
                if passport is not None else None,
                "number": ring.encrypt("national_id", national_id, ring.decrypt("national_id", national_id, number))
                if number is not None else None,
            })
        # updated_at stays: a new ciphertext of the same number is no change of the person (it would make every
        # active crisis re-run).
        table = National.__table__
        db.session.execute(update(table).where(table.c.id == bindparam("national_id"))
                           .values(passport_ciphertext=bindparam("passport"), national_id_ciphertext=bindparam("number"),
                                   updated_at=table.c.updated_at), updates)
        db.session.commit()
        total += len(rows)
        after = rows[-1][0]
        if progress:
            progress(total)


def index_versions_in_use() -> dict[int, int]:
    """{index key version: how many nationals} for every version but the current one."""
    rows = db.session.execute(select(National.index_key_version, func.count())
                              .where(National.index_key_version != keyring().index_current)
                              .group_by(National.index_key_version)).all()
    return dict(rows)


# One statement per batch; ``updated_at`` is kept: nothing a reader sees changed.
_REINDEX = text("""
UPDATE nationals n
SET passport_index = k.passport_index, national_id_index = k.national_id_index, index_key_version = :version
FROM unnest(CAST(:ids AS uuid[]), CAST(:passports AS bytea[]), CAST(:numbers AS bytea[]))
     AS k(id, passport_index, national_id_index)
WHERE n.id = k.id
""")


def reindex_documents(batch: int = 2000, progress=None) -> tuple[int, list[tuple[uuid.UUID, str]]]:
    """Recompute the passport and national ID indexes of every national not on the current index key.

    In id order, a batch per transaction, committed as it goes: a rerun after an interruption continues
    with what is left. The batch's rows are locked, so an update meanwhile is not overwritten. A record
    whose number does not decrypt, or whose passport another record already holds under the current key
    (a duplicate that slipped in while processes disagreed on the keys), stays on its version.
    → (records re-indexed, [(id, why) of those skipped]).
    """
    ring = keyring()
    stale = National.index_key_version != ring.index_current
    done, after, skipped = 0, uuid.UUID(int=0), []
    while True:
        rows = db.session.execute(
            select(National.id, National.nationality, National.passport_ciphertext, National.national_id_ciphertext)
            .where(stale, National.id > after).order_by(National.id).limit(batch).with_for_update()).all()
        if not rows:
            db.session.commit()
            return done, skipped
        after = rows[-1][0]
        updates = []
        for national_id, nationality, passport, number in rows:
            try:
                updates.append({
                    "id": national_id, "nationality": nationality,
                    "passport": ring.blind_index("passport", ring.decrypt("passport", national_id, passport))
                    if passport is not None else None,
                    "number": ring.blind_index("national_id", ring.decrypt("national_id", national_id, number))
                    if number is not None else None,
                })
            except DecryptionError as exc:
                skipped.append((national_id, str(exc)))
        updates = _without_passport_conflicts(updates, skipped)
        if updates:
            db.session.execute(_REINDEX, {"version": ring.index_current, "ids": [u["id"] for u in updates],
                                          "passports": [u["passport"] for u in updates],
                                          "numbers": [u["number"] for u in updates]})
        db.session.commit()
        done += len(updates)
        if progress:
            progress(done)


# Records holding any of the given (nationality, passport index) pairs: one index probe per pair.
_PASSPORT_HOLDERS = text("""
SELECT n.id, n.nationality, n.passport_index
FROM unnest(CAST(:nationalities AS varchar[]), CAST(:indexes AS bytea[])) AS k(nationality, passport_index)
JOIN nationals n ON n.nationality = k.nationality AND n.passport_index = k.passport_index
""")


def _without_passport_conflicts(updates: list[dict], skipped: list) -> list[dict]:
    """``updates`` less those whose new passport index (with their nationality) another record holds,
    inside or outside the batch; those are added to ``skipped``."""
    batch_ids = {u["id"] for u in updates}
    keyed = [u for u in updates if u["passport"] is not None]
    holders = {}
    if keyed:
        found = db.session.execute(_PASSPORT_HOLDERS, {"nationalities": [u["nationality"] for u in keyed],
                                                       "indexes": [u["passport"] for u in keyed]})
        for holder_id, nationality, index in found:
            if holder_id not in batch_ids:
                holders[(nationality, bytes(index))] = holder_id
    kept = []
    for u in updates:
        if u["passport"] is not None:
            # The first of the batch to claim a passport keeps it; a later one conflicts with it.
            holder = holders.setdefault((u["nationality"], u["passport"]), u["id"])
            if holder != u["id"]:
                skipped.append((u["id"], f"same passport and nationality as {holder}"))
                continue
        kept.append(u)
    return kept
