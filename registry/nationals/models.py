"""Nationals abroad, their deployments, next of kin and location history."""
from __future__ import annotations

import uuid
from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Date, DateTime, Float, ForeignKey, Identity,
                        Index, Integer, LargeBinary, SmallInteger, String, Text, Uuid, func, text)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.extensions import db, sql_in
from registry.validation import LEGAL_STATUSES, SEXES, VULNERABILITIES  # noqa: F401 (their home is validation)

NATIONAL_STATUSES = ("abroad", "returned", "missing", "deceased", "unverified")
# ``unverified``: a self-registration (SPEC §10) no officer has checked yet. Only the verification queue sets or
# clears it; an officer's update chooses among the others.
SETTABLE_STATUSES = ("abroad", "returned", "missing", "deceased")
SOURCES = ("departure_desk", "embassy", "self_registration", "bulk_import")
# ``self_report``: the person's own phone (a check-in, a self-registration), precise to its stated accuracy.
LOCATION_SOURCES = ("gps", "geocoded_city", "geocoded_address", "country_centroid", "self_report")
# Sources whose points are fixes of the device, precise to their ``precision_m`` (exposure certainty).
PRECISE_SOURCES = ("gps", "self_report")


class National(db.Model):
    """A person registered abroad; ``location*`` mirror the latest location report."""

    __tablename__ = "nationals"
    __table_args__ = (
        CheckConstraint(f"sex IN {sql_in(SEXES)}", name="sex"),
        CheckConstraint(f"status IN {sql_in(NATIONAL_STATUSES)}", name="status"),
        CheckConstraint(f"source IN {sql_in(SOURCES)}", name="source"),
        CheckConstraint(f"vulnerabilities <@ ARRAY{list(VULNERABILITIES)}::varchar[]", name="vulnerabilities"),
        CheckConstraint(f"location_source IN {sql_in(LOCATION_SOURCES)}", name="location_source"),
        # One registration per passport and issuing nationality.
        Index("uq_nationals_nationality_passport_index", "nationality", "passport_index", unique=True,
              postgresql_where=text("passport_index IS NOT NULL")),
        # A passport search names no nationality: this index serves it (the unique one leads with nationality).
        Index("ix_nationals_passport_index", "passport_index", postgresql_where=text("passport_index IS NOT NULL")),
        Index("ix_nationals_national_id_index", "national_id_index",
              postgresql_where=text("national_id_index IS NOT NULL")),
        Index("ix_nationals_returned_at", "returned_at", postgresql_where=text("returned_at IS NOT NULL")),
        Index("ix_nationals_created_at_id", "created_at", "id"),
        # Active crises re-run when anything changed since their last run (registry/crises/services.py).
        Index("ix_nationals_updated_at", "updated_at"),
        Index("ix_nationals_search_name_trgm", "search_name", postgresql_using="gin",
              postgresql_ops={"search_name": "gin_trgm_ops"}),
        Index("ix_nationals_location", "location", postgresql_using="gist"),
        # Geodesic queries (ST_DWithin on geography) use this one.
        Index("ix_nationals_location_geog", text("(location::geography)"), postgresql_using="gist"),
        Index("ix_nationals_birth_names", "date_of_birth", "search_name"),
        Index("ix_nationals_phones", "phones", postgresql_using="gin"),
        Index("ix_nationals_household_id", "household_id"),
        Index("ix_nationals_jurisdiction_country", "jurisdiction_country"),
        # The exposure run's nationals known only by their country (one in twenty), by country.
        Index("ix_nationals_country_only", "jurisdiction_country",
              postgresql_where=text("location_source = 'country_centroid' AND erased_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Personal fields are nullable: erasure blanks them and keeps the stub.
    family_name: Mapped[str | None] = mapped_column(String(200))
    given_names: Mapped[str | None] = mapped_column(String(200))
    native_name: Mapped[str | None] = mapped_column(String(200))
    sex: Mapped[str | None] = mapped_column(String(1))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    nationality: Mapped[str] = mapped_column(String(2))
    # Encrypted at rest, with a keyed blind index for exact lookup (registry/crypto.py).
    passport_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    passport_index: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    national_id_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    national_id_index: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    # The version of the index key both indexes were computed with (``registry keys rotate-index``).
    index_key_version: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    phones: Mapped[list[str]] = mapped_column(ARRAY(String(16)), default=list, server_default="{}")
    email: Mapped[str | None] = mapped_column(String(254))
    languages: Mapped[list[str]] = mapped_column(ARRAY(String(3)), default=list, server_default="{}")
    vulnerabilities: Mapped[list[str]] = mapped_column(ARRAY(String(20)), default=list, server_default="{}")
    household_id: Mapped[uuid.UUID] = mapped_column(Uuid, default=uuid.uuid4)
    status: Mapped[str] = mapped_column(String(12), default="abroad", server_default="abroad")
    source: Mapped[str] = mapped_column(String(20), default="departure_desk", server_default="departure_desk")
    consent: Mapped[dict | None] = mapped_column(JSONB)
    # Lower-case ASCII transliteration of all names, for trigram search.
    search_name: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The host country whose embassy answers for this national (SPEC §4).
    jurisdiction_country: Mapped[str] = mapped_column(String(2))
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    location_source: Mapped[str | None] = mapped_column(String(20))
    location_precision_m: Mapped[float | None] = mapped_column(Float)
    location_reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the status last became ``returned``: the retention period counts from it.
    returned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    deployment: Mapped[Deployment | None] = relationship(
        primaryjoin="and_(National.id == Deployment.national_id, Deployment.is_current)",
        viewonly=True, uselist=False, lazy="joined")
    next_of_kin: Mapped[NextOfKin | None] = relationship(uselist=False, lazy="joined", cascade="all, delete-orphan")


class Deployment(db.Model):
    """A stay abroad; exactly one per national is current."""

    __tablename__ = "deployments"
    __table_args__ = (
        CheckConstraint(f"legal_status IN {sql_in(LEGAL_STATUSES)}", name="legal_status"),
        CheckConstraint("contract_end IS NULL OR contract_start IS NULL OR contract_end > contract_start",
                        name="contract_dates"),
        # With the city: the exposure run counts its rows by city from this index alone (migration 0025).
        Index("uq_deployments_current", "national_id", unique=True, postgresql_where=text("is_current"),
              postgresql_include=["city"]),
        Index("ix_deployments_host_country_city", "host_country", "city"),
        # A national's deployment of a past day (statistics, migration 0021).
        Index("ix_deployments_national_id", "national_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    national_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("nationals.id", ondelete="CASCADE"))
    is_current: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    host_country: Mapped[str] = mapped_column(String(2))
    city: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))
    employer: Mapped[str | None] = mapped_column(String(200))
    occupation_isco: Mapped[str | None] = mapped_column(String(4))
    sector: Mapped[str | None] = mapped_column(String(100))
    contract_start: Mapped[date | None] = mapped_column(Date)
    contract_end: Mapped[date | None] = mapped_column(Date)
    legal_status: Mapped[str] = mapped_column(String(12), default="unknown", server_default="unknown")
    recruitment_agency: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NextOfKin(db.Model):
    __tablename__ = "next_of_kin"

    national_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("nationals.id", ondelete="CASCADE"),
                                                   primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    relation: Mapped[str | None] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(16))


class LocationReport(db.Model):
    """A dated point; the latest by ``reported_at`` is the current location."""

    __tablename__ = "location_reports"
    __table_args__ = (
        CheckConstraint(f"source IN {sql_in(LOCATION_SOURCES)}", name="source"),
        CheckConstraint("precision_m >= 0", name="precision_m"),
        Index("ix_location_reports_national_id_reported_at", "national_id", "reported_at"),
        Index("ix_location_reports_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    national_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("nationals.id", ondelete="CASCADE"))
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    source: Mapped[str] = mapped_column(String(20))
    precision_m: Mapped[float] = mapped_column(Float)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Country(db.Model):
    """Reference countries (geodata/): the fallback point used when nothing better is known."""

    __tablename__ = "countries"

    alpha2: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    label_point = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    precision_m: Mapped[int] = mapped_column(Integer)
    # Natural Earth 1:10m boundary, cut at ±180° (geodata/README.md).
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False)
    __table_args__ = (Index("ix_countries_geom", "geom", postgresql_using="gist"),)


class CountryPart(db.Model):
    """A country's boundary cut into pieces of at most 256 vertices: what point-in-country tests query."""

    __tablename__ = "country_parts"
    __table_args__ = (
        Index("ix_country_parts_geom", "geom", postgresql_using="gist"),
        Index("ix_country_parts_alpha2", "alpha2"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    alpha2: Mapped[str] = mapped_column(ForeignKey("countries.alpha2", ondelete="CASCADE"))
    geom = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False)
