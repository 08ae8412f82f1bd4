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
    """A free slot is a number the counter handed out and no report holds: without the table, those numbers would
    be gaps. Where no report holds a number above a county's lowest free one, the free numbers are the counter's
    last ones and are given back to it; otherwise the downgrade is refused."""
    bind = op.get_bind()
    free = bind.execute(
        sa.text("SELECT year, region_code, min(value) FROM report_number_slots GROUP BY year, region_code")
    ).all()
    for year, region_code, lowest in free:
        prefix = f"{year}-{region_code}-"
        above = bind.execute(
            sa.text("SELECT count(*) FROM reports WHERE number LIKE :prefix AND number > :lowest"),
            {"prefix": f"{prefix}%", "lowest": f"{prefix}{lowest:06d}"},
        ).scalar_one()
        if above:
            raise RuntimeError(f"{prefix}: free numbers lie below numbers in use; downgrading would leave gaps")
        bind.execute(
            sa.text(
                "UPDATE report_number_counters SET last_value = :last WHERE year = :year AND region_code = :region_code"
            ),
            {"last": lowest - 1, "year": year, "region_code": region_code},
        )
    op.drop_table("report_number_slots")
