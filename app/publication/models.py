"""A case's publication on the exposure board: the public artefact a dispatcher made, apart from the case."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, CreatedAt, UUIDPrimaryKey


class CasePublication(UUIDPrimaryKey, CreatedAt, Base):
    """One per case. Everything place-related the public sees is fixed here when it is published (the township-level
    unit and its coarse centroid), so public queries never read the report's own point."""

    __tablename__ = "case_publications"
    __table_args__ = (Index("ix_case_publications_published_at_id", "published_at", "id"),)

    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"), unique=True)
    summary: Mapped[str] = mapped_column(Text)
    # Upload ids of the photos shown, in order; only their display and thumbnail derivatives are ever served.
    photo_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    place_adcode: Mapped[str | None] = mapped_column(String(12), index=True)
    place_name: Mapped[str | None] = mapped_column(String(100))
    place_level: Mapped[str | None] = mapped_column(String(20))
    # The place's centroid in WGS-84, rounded to 0.01° (about 1 km): never the report's point.
    place_longitude: Mapped[float | None] = mapped_column(Float)
    place_latitude: Mapped[float | None] = mapped_column(Float)
    # The last (re)publication: the board's order. A publication vouches for the closure before it, so a case that
    # is reopened (appeal) and closed again leaves the board until a dispatcher publishes it again.
    published_at: Mapped[datetime]
    published_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    updated_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    withdrawal_reason: Mapped[str | None] = mapped_column(Text)
