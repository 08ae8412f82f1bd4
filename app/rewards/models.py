"""Reward policies (versioned, insert-only), rewards, the money ledger (insert-only) and payments."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, CreatedAt, UUIDPrimaryKey, utcnow


class RewardPolicyVersion(UUIDPrimaryKey, CreatedAt, Base):
    """One version of one locality's reward policy, as the JSON an admin loaded (``app.rewards.policy``). Never
    updated: a change is a new version, and a reward names the version it was decided under."""

    __tablename__ = "reward_policies"
    __table_args__ = (UniqueConstraint("code", "version"),)

    code: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    jurisdiction_scope: Mapped[str | None] = mapped_column(String(12))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(80))


class Reward(UUIDPrimaryKey, CreatedAt, Base):
    """One stage of the reward for one case, to the first reporter of its merge group.

    The amounts here are the decision's; the money is in :class:`RewardLedgerEntry`. Payee details exist only once
    claimed (data minimisation), encrypted, with masked copies for display and keyed hashes for search.
    """

    __tablename__ = "rewards"
    __table_args__ = (
        UniqueConstraint("case_id", "stage"),
        Index("ix_rewards_state_created_at", "state", "created_at"),
        Index("ix_rewards_department_id_created_at", "department_id", "created_at"),
    )

    number: Mapped[str] = mapped_column(String(40), unique=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"))
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"), index=True)
    stage: Mapped[str] = mapped_column(String(12))
    state: Mapped[str] = mapped_column(String(20))
    department_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("departments.id"))
    category_code: Mapped[str] = mapped_column(String(40), index=True)
    jurisdiction_adcode: Mapped[str | None] = mapped_column(String(12))
    received_on: Mapped[date] = mapped_column(Date, index=True)  # the case's, for the statistics
    case_kind: Mapped[str] = mapped_column(String(24))
    reporter_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reporters.id"), index=True)
    reporter_key: Mapped[str] = mapped_column(String(80), index=True)
    anonymous: Mapped[bool] = mapped_column(Boolean)
    policy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reward_policies.id"), index=True)
    policy_code: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[int] = mapped_column(Integer)
    # The current decision: its amount (None while it needs the department's input), total and explanation.
    eligible: Mapped[bool] = mapped_column(Boolean)
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    total_fen: Mapped[int | None] = mapped_column(BigInteger)
    explanation: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    confirmed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    confirmed_at: Mapped[datetime | None]
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    approved_fen: Mapped[int | None] = mapped_column(BigInteger)
    approved_at: Mapped[datetime | None] = mapped_column(index=True)
    claim_deadline: Mapped[datetime | None] = mapped_column(index=True)
    claimed_at: Mapped[datetime | None]
    claimed_via: Mapped[str | None] = mapped_column(String(10))  # account | code
    payee_name_encrypted: Mapped[str | None] = mapped_column(String(300))
    payee_id_number_encrypted: Mapped[str | None] = mapped_column(String(300))
    payee_account_encrypted: Mapped[str | None] = mapped_column(String(300))
    payee_bank: Mapped[str | None] = mapped_column(String(100))
    payee_name_masked: Mapped[str | None] = mapped_column(String(40))
    payee_id_masked: Mapped[str | None] = mapped_column(String(24))
    payee_account_masked: Mapped[str | None] = mapped_column(String(40))
    payee_name_index: Mapped[str | None] = mapped_column(String(64), index=True)
    payee_id_index: Mapped[str | None] = mapped_column(String(64), index=True)
    paid_at: Mapped[datetime | None] = mapped_column(index=True)
    paid_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    appeals_used: Mapped[int] = mapped_column(Integer, default=0)
    appeal_reason: Mapped[str | None] = mapped_column(Text)
    ledger_count: Mapped[int] = mapped_column(Integer, default=0)
    payment_attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RewardLedgerEntry(UUIDPrimaryKey, CreatedAt, Base):
    """One money row. Never updated or deleted; a correction is a reversing row (``reverses_id``). Each names the
    case, the policy version and the actor, so every fen traces to who decided it and under which rules."""

    __tablename__ = "reward_ledger"
    __table_args__ = (
        UniqueConstraint("reward_id", "sequence"),
        Index("ix_reward_ledger_created_at", "created_at"),
    )

    reward_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rewards.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    account: Mapped[str] = mapped_column(String(10))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"), index=True)
    policy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reward_policies.id"))
    actor_id: Mapped[str] = mapped_column(String(80))
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reward_ledger.id"))
    payment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reward_payments.id"))
    note: Mapped[str | None] = mapped_column(Text)


class RewardPayment(UUIDPrimaryKey, CreatedAt, Base):
    """A payment of a reward through a channel. ``out_bill_no`` is ours, fixed per attempt (a retried transfer
    keeps it, as WeChat Pay's merchant transfer requires); ``reference`` is the bank's or the channel's. At most
    one payment of a reward is live: the partial unique index is the database's own guarantee of exactly once."""

    __tablename__ = "reward_payments"
    __table_args__ = (
        UniqueConstraint("reward_id", "attempt"),
        Index(
            "uq_reward_payments_live",
            "reward_id",
            unique=True,
            postgresql_where=text("status = 'succeeded'"),
            sqlite_where=text("status = 'succeeded'"),
        ),
    )

    reward_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rewards.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    out_bill_no: Mapped[str] = mapped_column(String(32), unique=True)
    channel: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(100))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12))  # succeeded | reversed
    recorded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    paid_on: Mapped[date] = mapped_column(Date)
    reversed_at: Mapped[datetime | None]
    reversal_reason: Mapped[str | None] = mapped_column(Text)
