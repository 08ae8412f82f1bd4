"""The notification outbox and the subscription opt-ins it spends (see ``app.notifications.worker``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, CreatedAt, UUIDPrimaryKey, utcnow


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting to be claimed (new, or waiting out a retry delay)
    SENDING = "sending"  # claimed by a worker until ``claimed_until``; after that any worker may reclaim it
    SENT = "sent"
    REFUSED = "refused"  # WeChat 43101: the user refused or had no subscription left
    NO_OPT_IN = "no_opt_in"  # we counted no opt-in for it, so it was never sent
    FAILED = "failed"  # WeChat refused the message itself, or it ran out of attempts


OPEN_STATUSES = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)


class OutboxMessage(UUIDPrimaryKey, CreatedAt, Base):
    """A message to a reporter, written in the transaction of the change that caused it and sent after its commit.

    ``attempts`` counts claims and doubles as the fencing token of the current claim: a worker records its result
    only where ``status = 'sending' AND attempts = <what it claimed>``, so a worker whose lease was taken over
    cannot overwrite its successor's record.
    """

    __tablename__ = "notification_outbox"
    __table_args__ = (
        # The worker's due query. Partial: closed messages pile up forever and are never looked at again, so the
        # index holds only the open ones and stays small.
        Index(
            "ix_notification_outbox_due",
            "status",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'sending')"),
            sqlite_where=text("status IN ('pending', 'sending')"),
        ),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    # What makes two enqueues the same message, e.g. "<report id>:<event seq>".
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    reporter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reporters.id"), index=True)
    # Our key ("accepted", "result", ...); the WeChat template id is looked up in settings at send time.
    template_key: Mapped[str] = mapped_column(String(40))
    page: Mapped[str] = mapped_column(String(200))
    values: Mapped[dict[str, str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    sent_at: Mapped[datetime | None]


class SubscriptionOptIn(Base):
    """How many more messages of one template a reporter agreed to receive (wx.requestSubscribeMessage accepts).

    A one-time subscription allows exactly one message per acceptance; WeChat counts too and answers 43101 when
    we are wrong, which sets the count back to 0.
    """

    __tablename__ = "subscription_opt_ins"
    __table_args__ = (CheckConstraint("available >= 0", name="available_not_negative"),)

    reporter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reporters.id"), primary_key=True)
    template_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    available: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
