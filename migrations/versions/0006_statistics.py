"""statistics: the day a report was received and each step's duration on the report, with covering indexes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 23:40:56.687719
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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


def _backfill(postgresql: bool) -> None:
    """Existing reports get the same values the commands now keep as they go. PostgreSQL joins (UPDATE ... FROM: a
    million rows in about a minute); SQLite, where the tables are small, uses correlated subqueries."""
    steps = ("acceptance", "verification", "rectification")
    if postgresql:
        op.execute("UPDATE reports SET received_on = (created_at AT TIME ZONE 'Asia/Shanghai')::date")
        for step in steps:
            extra = ", verified_on_time = d.met_at <= d.due_at" if step == "verification" else ""
            op.execute(
                f"UPDATE reports r SET {step}_hours = extract(epoch FROM d.met_at - d.started_at) / 3600.0{extra} "
                f"FROM case_deadlines d WHERE d.report_id = r.id AND d.step = '{step}' AND d.met_at IS NOT NULL"
            )
        op.execute(
            "UPDATE reports r SET verification_outcome = v.outcome FROM case_verifications v WHERE v.report_id = r.id"
        )
        op.execute(
            "UPDATE reports r SET rectified_at = x.at FROM (SELECT report_id, max(reviewed_at) AS at FROM rectifications "
            "WHERE passed GROUP BY report_id) x WHERE x.report_id = r.id"
        )
        return
    op.execute("UPDATE reports SET received_on = date(created_at, '+8 hours')")
    for step in steps:
        op.execute(
            f"UPDATE reports SET {step}_hours = (SELECT (julianday(d.met_at) - julianday(d.started_at)) * 24.0 "
            f"FROM case_deadlines d WHERE d.report_id = reports.id AND d.step = '{step}' AND d.met_at IS NOT NULL)"
        )
    op.execute(
        "UPDATE reports SET verified_on_time = (SELECT d.met_at <= d.due_at FROM case_deadlines d "
        "WHERE d.report_id = reports.id AND d.step = 'verification' AND d.met_at IS NOT NULL)"
    )
    op.execute(
        "UPDATE reports SET verification_outcome = "
        "(SELECT v.outcome FROM case_verifications v WHERE v.report_id = reports.id)"
    )
    op.execute(
        "UPDATE reports SET rectified_at = (SELECT max(r.reviewed_at) FROM rectifications r "
        "WHERE r.report_id = reports.id AND r.passed)"
    )


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("received_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("acceptance_hours", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("verification_hours", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("verified_on_time", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("verification_outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("rectification_hours", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("rectified_at", sa.DateTime(timezone=True), nullable=True))
    _backfill(op.get_bind().dialect.name == "postgresql")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.alter_column("received_on", existing_type=sa.Date(), nullable=False)
        batch_op.create_index(
            "ix_reports_department_statistics",
            ["department_id", "received_on"],
            unique=False,
            postgresql_include=STATISTICS_COLUMNS,
        )
        batch_op.create_index(
            "ix_reports_statistics",
            ["received_on"],
            unique=False,
            postgresql_include=["department_id", *STATISTICS_COLUMNS],
        )


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_statistics")
        batch_op.drop_index("ix_reports_department_statistics")
        for column in (
            "rectified_at",
            "rectification_hours",
            "verification_outcome",
            "verified_on_time",
            "verification_hours",
            "acceptance_hours",
            "received_on",
        ):
            batch_op.drop_column(column)
