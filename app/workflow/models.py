"""The case's record: an immutable timeline of events, the verification, rectification rounds, deadlines, the
duplicate candidates found at submission, and the staff audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, CreatedAt, UUIDPrimaryKey, utcnow


class CaseEvent(UUIDPrimaryKey, CreatedAt, Base):
    """One command applied to a case. Never updated or deleted: the case's state replays from these."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("report_id", "sequence"),)

    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    command: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor_kind: Mapped[str] = mapped_column(String(10))  # staff | reporter | system
    actor_id: Mapped[str | None] = mapped_column(String(40))
    actor_role: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attachments: Mapped[list[str]] = mapped_column(JSON, default=list)


class CaseVerification(Base):
    """The verification outcome (核查结果) of a case: what the department found on site."""

    __tablename__ = "case_verifications"

    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))  # true | partly_true | false
    hazard_level: Mapped[str | None] = mapped_column(String(10))  # general | major (一般 / 重大)
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    enterprise_credit_code: Mapped[str | None] = mapped_column(String(18))
    penalty_fen: Mapped[int | None] = mapped_column(BigInteger)
    standard_items: Mapped[list[str]] = mapped_column(JSON, default=list)
    findings: Mapped[str] = mapped_column(Text)
    verified_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)


class Rectification(UUIDPrimaryKey, Base):
    """One round of rectification (整改): ordered, reported done with after-photos, reviewed."""

    __tablename__ = "rectifications"
    __table_args__ = (UniqueConstraint("report_id", "round"),)

    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"))
    round: Mapped[int] = mapped_column(Integer)
    measures: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime]
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    ordered_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    ordered_at: Mapped[datetime] = mapped_column(default=utcnow)
    reported_at: Mapped[datetime | None]
    after_photo_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    reviewed_at: Mapped[datetime | None]
    passed: Mapped[bool | None] = mapped_column(Boolean)
    review_note: Mapped[str | None] = mapped_column(Text)
