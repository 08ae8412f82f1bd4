"""notification outbox and subscription opt-ins

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("status IN ('pending', 'sending')")


def upgrade() -> None:
    op.create_table(
        "notification_outbox",
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("reporter_id", sa.Uuid(), nullable=False),
        sa.Column("template_key", sa.String(length=40), nullable=False),
        sa.Column("page", sa.String(length=200), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_notification_outbox_attempts_not_negative")),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["reporters.id"], name=op.f("fk_notification_outbox_reporter_id_reporters")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notification_outbox_dedupe_key")),
    )
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notification_outbox_due",
            ["status", "next_attempt_at"],
            unique=False,
            postgresql_where=OPEN,
            sqlite_where=OPEN,
        )
        batch_op.create_index(batch_op.f("ix_notification_outbox_reporter_id"), ["reporter_id"], unique=False)

    op.create_table(
        "subscription_opt_ins",
        sa.Column("reporter_id", sa.Uuid(), nullable=False),
        sa.Column("template_key", sa.String(length=40), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("available >= 0", name=op.f("ck_subscription_opt_ins_available_not_negative")),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["reporters.id"], name=op.f("fk_subscription_opt_ins_reporter_id_reporters")
        ),
        sa.PrimaryKeyConstraint("reporter_id", "template_key", name=op.f("pk_subscription_opt_ins")),
    )


def downgrade() -> None:
    op.drop_table("subscription_opt_ins")
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_outbox_reporter_id"))
        batch_op.drop_index("ix_notification_outbox_due", postgresql_where=OPEN, sqlite_where=OPEN)
    op.drop_table("notification_outbox")
