"""report number slots: numbers taken from a county's counter a block at a time and not yet a report's, so that
submissions of one county do not wait for each other's commit on the counter row

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 09:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_number_slots",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", "region_code", "value", name=op.f("pk_report_number_slots")),
    )


def downgrade() -> None:
    # A free slot is a number the counter handed out and no report holds: without the table, those numbers would
    # be gaps. Given back to the counter where they are its last ones; refused otherwise.
    bind = op.get_bind()
    stranded = bind.execute(
        sa.text(
            "SELECT count(*) FROM report_number_slots s JOIN report_number_counters c "
            "ON c.year = s.year AND c.region_code = s.region_code "
            "WHERE EXISTS (SELECT 1 FROM reports r WHERE r.number = "
            "CAST(s.year AS VARCHAR) || '-' || s.region_code || '-' || lpad(CAST(s.value + 1 AS VARCHAR), 6, '0'))"
        )
    ).scalar_one()
    if stranded:
        raise RuntimeError(f"{stranded} free report numbers lie below numbers in use: downgrading would leave gaps")
    op.execute(
        "UPDATE report_number_counters SET last_value = (SELECT min(s.value) - 1 FROM report_number_slots s "
        "WHERE s.year = report_number_counters.year AND s.region_code = report_number_counters.region_code) "
        "WHERE EXISTS (SELECT 1 FROM report_number_slots s WHERE s.year = report_number_counters.year "
        "AND s.region_code = report_number_counters.region_code)"
    )
    op.drop_table("report_number_slots")
