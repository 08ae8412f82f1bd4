"""the duplicate lookup's index: a category's reports by point (latitude, then longitude), so that finding the open
reports near a new one reads the few in its box, not every report of the category in the window

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 05:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index("ix_reports_nearby", ["category_code", "wgs84_latitude", "wgs84_longitude"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_nearby")
