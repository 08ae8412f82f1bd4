"""queue indexes: a department's newest cases, everyone's, the open cases by state; the foreign keys to reports
that merge groups, duplicate lookups and the ledger read by

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 03:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("duplicate_candidates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_duplicate_candidates_candidate_id"), ["candidate_id"], unique=False)
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index("ix_reports_created_at", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_reports_department_id_created_at", ["department_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_reports_department_id_state", ["department_id", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_reports_merged_into_id"), ["merged_into_id"], unique=False)
    with op.batch_alter_table("reward_ledger", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reward_ledger_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reward_ledger", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reward_ledger_case_id"))
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_merged_into_id"))
        batch_op.drop_index("ix_reports_department_id_state")
        batch_op.drop_index("ix_reports_department_id_created_at")
        batch_op.drop_index("ix_reports_created_at")
    with op.batch_alter_table("duplicate_candidates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duplicate_candidates_candidate_id"))
