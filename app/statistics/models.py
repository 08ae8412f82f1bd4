"""Monthly rollups of the reports, for the dashboard over long periods. Derived data: rebuilt whole by
``app.statistics.rollup.refresh``, never edited; the reports, deadlines and ledger remain the record."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UUIDPrimaryKey


class MonthlyCounts(UUIDPrimaryKey, Base):
    """Reports received in a month (China time), by department, category, place and state, with the measures the
    dashboard adds up."""

    __tablename__ = "statistics_monthly"
    __table_args__ = (Index("ix_statistics_monthly_month", "month", "department_id"),)

    month: Mapped[date] = mapped_column(Date)
    department_id: Mapped[uuid.UUID | None]
    category_code: Mapped[str] = mapped_column(String(40))
    jurisdiction_adcode: Mapped[str | None] = mapped_column(String(12))
    state: Mapped[str] = mapped_column(String(32))
    reports: Mapped[int] = mapped_column(Integer)
    rated: Mapped[int] = mapped_column(Integer)
    satisfied: Mapped[int] = mapped_column(Integer)
    score_sum: Mapped[int] = mapped_column(Integer)
    verified: Mapped[int] = mapped_column(Integer)
    verified_on_time: Mapped[int] = mapped_column(Integer)
    verified_true: Mapped[int] = mapped_column(Integer)
    rectified: Mapped[int] = mapped_column(Integer)


class MonthlyDurations(UUIDPrimaryKey, Base):
    """How many of a month's reports took each duration bucket at each step, by department."""

    __tablename__ = "statistics_monthly_durations"
    __table_args__ = (Index("ix_statistics_monthly_durations_month", "month", "department_id"),)

    month: Mapped[date] = mapped_column(Date)
    department_id: Mapped[uuid.UUID | None]
    step: Mapped[str] = mapped_column(String(20))
    bucket: Mapped[int] = mapped_column(Integer)
    reports: Mapped[int] = mapped_column(Integer)


class RollupRefresh(Base):
    """When the rollups were last rebuilt (one row)."""

    __tablename__ = "statistics_refreshes"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    refreshed_at: Mapped[datetime]
