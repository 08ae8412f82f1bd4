"""routing reference data

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 11:13:12.164145
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "jurisdictions",
        sa.Column("adcode", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("parent_adcode", sa.String(length=12), nullable=True),
        sa.Column("datum", sa.String(length=8), nullable=False),
        sa.Column("geometry_wkb", sa.LargeBinary(), nullable=False),
        sa.Column("illustrative", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("adcode", name=op.f("pk_jurisdictions")),
    )
    with op.batch_alter_table("jurisdictions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jurisdictions_parent_adcode"), ["parent_adcode"], unique=False)

    op.create_table(
        "reference_changes",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_reference_changes")),
    )
    op.create_table(
        "routing_rules",
        sa.Column("category_code", sa.String(length=40), nullable=False),
        sa.Column("jurisdiction_adcode", sa.String(length=12), nullable=True),
        sa.Column("department_id", sa.Uuid(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_in_version", sa.Integer(), nullable=False),
        sa.Column("retired_in_version", sa.Integer(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_code"], ["categories.code"], name=op.f("fk_routing_rules_category_code_categories")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_routing_rules_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["jurisdiction_adcode"],
            ["jurisdictions.adcode"],
            name=op.f("fk_routing_rules_jurisdiction_adcode_jurisdictions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
    )
    with op.batch_alter_table("routing_rules", schema=None) as batch_op:
        batch_op.create_index("ix_routing_rules_category_code_active", ["category_code", "is_active"], unique=False)

    op.create_table(
        "routing_decisions",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("category_code", sa.String(length=40), nullable=False),
        sa.Column("department_id", sa.Uuid(), nullable=True),
        sa.Column("rule_id", sa.Uuid(), nullable=True),
        sa.Column("reference_version", sa.Integer(), nullable=False),
        sa.Column("jurisdiction_path", sa.JSON(), nullable=False),
        sa.Column("ambiguous", sa.Boolean(), nullable=False),
        sa.Column("distance_to_border_m", sa.Float(), nullable=True),
        sa.Column("actor_staff_id", sa.Uuid(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_staff_id"], ["staff_users.id"], name=op.f("fk_routing_decisions_actor_staff_id_staff_users")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_routing_decisions_department_id_departments")
        ),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_routing_decisions_report_id_reports")),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["routing_rules.id"], name=op.f("fk_routing_decisions_rule_id_routing_rules")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_decisions")),
    )
    with op.batch_alter_table("routing_decisions", schema=None) as batch_op:
        batch_op.create_index("ix_routing_decisions_report_id_created_at", ["report_id", "created_at"], unique=False)

    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jurisdiction_adcode", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()))

    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jurisdiction_adcode", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("department_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_reports_department_id"), ["department_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_reports_department_id_departments"), "departments", ["department_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_reports_department_id_departments"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_reports_department_id"))
        batch_op.drop_column("department_id")
        batch_op.drop_column("jurisdiction_adcode")

    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.drop_column("is_active")
        batch_op.drop_column("jurisdiction_adcode")

    with op.batch_alter_table("routing_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_decisions_report_id_created_at")

    op.drop_table("routing_decisions")
    with op.batch_alter_table("routing_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_rules_category_code_active")

    op.drop_table("routing_rules")
    op.drop_table("reference_changes")
    with op.batch_alter_table("jurisdictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jurisdictions_parent_adcode"))

    op.drop_table("jurisdictions")
