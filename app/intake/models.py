from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, CreatedAt, UUIDPrimaryKey


class Upload(UUIDPrimaryKey, CreatedAt, Base):
    """One uploaded photo: the private original (evidence, with its SHA-256) and its two EXIF-free derivatives.

    ``owner`` is the principal key of who uploaded it ("reporter:<id>" or "staff:<id>"). The same bytes from the
    same owner are one upload. An upload belongs to at most one report.
    """

    __tablename__ = "uploads"
    __table_args__ = (UniqueConstraint("owner", "sha256"),)

    owner: Mapped[str] = mapped_column(String(80))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    perceptual_hash: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(10))
    mime_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    original_key: Mapped[str] = mapped_column(String(200))
    display_key: Mapped[str] = mapped_column(String(200))
    thumbnail_key: Mapped[str] = mapped_column(String(200))
    exif_captured_at: Mapped[datetime | None]
    exif_longitude: Mapped[float | None] = mapped_column(Float)
    exif_latitude: Mapped[float | None] = mapped_column(Float)
    report_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reports.id"), index=True)
    position: Mapped[int | None] = mapped_column(Integer)


class PhotoHashBand(Base):
    """One 16-bit band of an upload's perceptual hash, so that similar photos are found by index (see
    ``duplicates.hash_bands``)."""

    __tablename__ = "photo_hash_bands"
    __table_args__ = (Index("ix_photo_hash_bands_lookup", "band", "value", "created_at"),)

    upload_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True)
    band: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    value: Mapped[int] = mapped_column(Integer)  # 0–65535
    created_at: Mapped[datetime]  # the upload's


# What the statistics read, carried in their indexes so that a dashboard query over a million reports is one
# index-only scan on PostgreSQL (INCLUDE is ignored on SQLite, where the tables are small).
STATISTICS_COLUMNS = [
    "category_code",
    "jurisdiction_adcode",
    "state",
    "satisfaction_score",
    "verification_outcome",
    "verified_on_time",
    "acceptance_hours",
    "verification_hours",
    "rectification_hours",
    "rectified_at",
    "created_at",
    "finished_at",
]


class Report(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "reports"
    __table_args__ = (
        Index("ix_reports_reporter_id_created_at", "reporter_id", "created_at"),
        # The staff queues: a department's newest first (and everyone's, for the dispatcher), and the per-state
        # counts of its open cases, which read only the index entries of the open states.
        Index("ix_reports_department_id_created_at", "department_id", "created_at", "id"),
        Index("ix_reports_created_at", "created_at", "id"),
        Index("ix_reports_department_id_state", "department_id", "state"),
        Index("ix_reports_category_code_created_at", "category_code", "created_at"),
        # The duplicate lookup: a category's reports in a small box around a new one's point.
        Index("ix_reports_nearby", "category_code", "wgs84_latitude", "wgs84_longitude"),
        Index("ix_reports_statistics", "received_on", postgresql_include=["department_id", *STATISTICS_COLUMNS]),
        Index(
            "ix_reports_department_statistics",
            "department_id",
            "received_on",
            postgresql_include=STATISTICS_COLUMNS,
        ),
    )

    number: Mapped[str] = mapped_column(String(32), unique=True)
    reporter_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reporters.id"))
    filed_by_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    channel: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(32), index=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    hazard_kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    longitude: Mapped[float] = mapped_column(Float)
    latitude: Mapped[float] = mapped_column(Float)
    # The point in WGS-84 whatever datum it came in, so that points can be compared with each other.
    wgs84_longitude: Mapped[float | None] = mapped_column(Float)
    wgs84_latitude: Mapped[float | None] = mapped_column(Float)
    datum: Mapped[str] = mapped_column(String(8))
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(12))
    # Where routing put it: the smallest jurisdiction containing the point, and the department now responsible
    # (None: the dispatcher's triage queue).
    jurisdiction_adcode: Mapped[str | None] = mapped_column(String(12))
    department_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("departments.id"), index=True)
    observed_at: Mapped[datetime]
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    enterprise_credit_code: Mapped[str | None] = mapped_column(String(18))
    reporter_is_employee: Mapped[bool] = mapped_column(Boolean)
    identity_hidden: Mapped[bool] = mapped_column(Boolean)
    query_code_hash: Mapped[str] = mapped_column(String(200))
    flags: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The case workflow's own facts (the timeline in case_events is the record; these make queries cheap).
    state_changed_at: Mapped[datetime | None]
    event_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reports.id"), index=True)
    rejection_reason: Mapped[str | None] = mapped_column(String(40))
    finished_at: Mapped[datetime | None]
    appeals_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rectification_round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    extension: Mapped[str] = mapped_column(String(10), default="none", server_default="none")
    satisfaction_score: Mapped[int | None] = mapped_column(Integer)
    satisfaction_comment: Mapped[str | None] = mapped_column(Text)
    # For the statistics: the day it was received (China time), and each step's duration and result as the step
    # is met (the case deadlines and the verification remain the record).
    received_on: Mapped[date] = mapped_column(Date)
    acceptance_hours: Mapped[float | None] = mapped_column(Float)
    verification_hours: Mapped[float | None] = mapped_column(Float)
    verified_on_time: Mapped[bool | None] = mapped_column(Boolean)
    verification_outcome: Mapped[str | None] = mapped_column(String(16))
    rectification_hours: Mapped[float | None] = mapped_column(Float)
    rectified_at: Mapped[datetime | None]


class DuplicateCandidate(UUIDPrimaryKey, CreatedAt, Base):
    """An open report that may be the same matter as this one, found when this one was submitted; the dispatcher
    decides (merge)."""

    __tablename__ = "duplicate_candidates"
    __table_args__ = (UniqueConstraint("report_id", "candidate_id"),)

    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"), index=True)
    candidate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"), index=True)
    distance_m: Mapped[float | None] = mapped_column(Float)
    same_photo: Mapped[bool] = mapped_column(Boolean, default=False)
    similar_photo: Mapped[bool] = mapped_column(Boolean, default=False)


class ReportContact(Base):
    """Contact details a hotline caller gave; identity kept apart from the case and encrypted at rest."""

    __tablename__ = "report_contacts"

    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"), primary_key=True)
    name_encrypted: Mapped[str | None] = mapped_column(String(300))
    phone_encrypted: Mapped[str | None] = mapped_column(String(300))
    phone_index: Mapped[str | None] = mapped_column(String(64), index=True)


class ReportNumberCounter(Base):
    """The running sequence behind report numbers, one per year and region."""

    __tablename__ = "report_number_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer, default=0)


class ReportNumberSlot(Base):
    """A number the counter has handed out that no report holds yet: PostgreSQL takes numbers a block at a time and
    submissions take the lowest free one (see ``service._postgresql_statement``). Every number up to the counter's
    value is either a report's or here."""

    __tablename__ = "report_number_slots"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, primary_key=True)
