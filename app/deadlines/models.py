"""Deadlines of cases: the policies, the official calendar years loaded by admins, and each case's clocks."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, CreatedAt, UUIDPrimaryKey, utcnow


class DeadlinePolicy(UUIDPrimaryKey, CreatedAt, Base):
    """How many days a step may take, for a department and/or category (null: any), counted in calendar or
    working days. The most specific policy wins."""

    __tablename__ = "deadline_policies"
    __table_args__ = (UniqueConstraint("step", "department_id", "category_code"),)

    step: Mapped[str] = mapped_column(String(20))  # acceptance | verification | rectification
    department_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("departments.id"))
    category_code: Mapped[str | None] = mapped_column(ForeignKey("categories.code"))
    days: Mapped[int] = mapped_column(Integer)
    count: Mapped[str] = mapped_column(String(10))  # calendar | working


class CalendarYear(Base):
    """A year's official holidays and make-up working days, loaded by an admin when the State Council publishes
    them; overrides the calendar package for that year."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holidays: Mapped[list[str]] = mapped_column(JSON)
    workdays: Mapped[list[str]] = mapped_column(JSON)
    loaded_by: Mapped[str] = mapped_column(String(80))
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseDeadline(UUIDPrimaryKey, Base):
    """The deadline of one step of one case; recomputed when a provisional one's year gets loaded."""

    __tablename__ = "case_deadlines"
    __table_args__ = (
        UniqueConstraint("report_id", "step"),
        Index("ix_case_deadlines_open_due", "met_at", "due_at"),
    )

    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"))
    step: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime]
    days: Mapped[int] = mapped_column(Integer)
    count: Mapped[str] = mapped_column(String(10))
    due_at: Mapped[datetime]
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    extended_days: Mapped[int] = mapped_column(Integer, default=0)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    met_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
