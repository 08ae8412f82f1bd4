"""case workflow

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 11:53:21.515440
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("actor_id", sa.String(length=80), nullable=False),
        sa.Column("actor_role", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target_type", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)
        batch_op.create_index("ix_audit_log_created_at", ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_target_id"), ["target_id"], unique=False)

    op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("holidays", sa.JSON(), nullable=False),
        sa.Column("workdays", sa.JSON(), nullable=False),
        sa.Column("loaded_by", sa.String(length=80), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_calendar_years")),
    )
    op.create_table(
        "deadline_policies",
        sa.Column("step", sa.String(length=20), nullable=False),
        sa.Column("department_id", sa.Uuid(), nullable=True),
        sa.Column("category_code", sa.String(length=40), nullable=True),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("count", sa.String(length=10), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_code"], ["categories.code"], name=op.f("fk_deadline_policies_category_code_categories")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_deadline_policies_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadline_policies")),
        sa.UniqueConstraint(
            "step", "department_id", "category_code", name=op.f("uq_deadline_policies_step_department_id_category_code")
        ),
    )
    op.create_table(
        "case_deadlines",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("step", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("count", sa.String(length=10), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("extended_days", sa.Integer(), nullable=False),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_case_deadlines_report_id_reports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_deadlines")),
        sa.UniqueConstraint("report_id", "step", name=op.f("uq_case_deadlines_report_id_step")),
    )
    with op.batch_alter_table("case_deadlines", schema=None) as batch_op:
        batch_op.create_index("ix_case_deadlines_open_due", ["met_at", "due_at"], unique=False)

    op.create_table(
        "case_events",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("command", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=False),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("actor_kind", sa.String(length=10), nullable=False),
        sa.Column("actor_id", sa.String(length=40), nullable=True),
        sa.Column("actor_role", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_case_events_report_id_reports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
        sa.UniqueConstraint("report_id", "sequence", name=op.f("uq_case_events_report_id_sequence")),
    )
    op.create_table(
        "case_verifications",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("hazard_level", sa.String(length=10), nullable=True),
        sa.Column("enterprise_name", sa.String(length=200), nullable=True),
        sa.Column("enterprise_credit_code", sa.String(length=18), nullable=True),
        sa.Column("penalty_fen", sa.BigInteger(), nullable=True),
        sa.Column("standard_items", sa.JSON(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("verified_by", sa.Uuid(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_case_verifications_report_id_reports")),
        sa.ForeignKeyConstraint(
            ["verified_by"], ["staff_users.id"], name=op.f("fk_case_verifications_verified_by_staff_users")
        ),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_case_verifications")),
    )
    op.create_table(
        "duplicate_candidates",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("candidate_id", sa.Uuid(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("same_photo", sa.Boolean(), nullable=False),
        sa.Column("similar_photo", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["reports.id"], name=op.f("fk_duplicate_candidates_candidate_id_reports")
        ),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_duplicate_candidates_report_id_reports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_candidates")),
        sa.UniqueConstraint("report_id", "candidate_id", name=op.f("uq_duplicate_candidates_report_id_candidate_id")),
    )
    with op.batch_alter_table("duplicate_candidates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_duplicate_candidates_report_id"), ["report_id"], unique=False)

    op.create_table(
        "rectifications",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_provisional", sa.Boolean(), nullable=False),
        sa.Column("ordered_by", sa.Uuid(), nullable=False),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("after_photo_ids", sa.JSON(), nullable=False),
        sa.Column("reviewed_by", sa.Uuid(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ordered_by"], ["staff_users.id"], name=op.f("fk_rectifications_ordered_by_staff_users")
        ),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_rectifications_report_id_reports")),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["staff_users.id"], name=op.f("fk_rectifications_reviewed_by_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rectifications")),
        sa.UniqueConstraint("report_id", "round", name=op.f("uq_rectifications_report_id_round")),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wgs84_longitude", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("wgs84_latitude", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("event_count", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("assignee_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("merged_into_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("rejection_reason", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("appeals_used", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("rectification_round", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("extension", sa.String(length=10), server_default="none", nullable=False))
        batch_op.add_column(sa.Column("satisfaction_score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("satisfaction_comment", sa.Text(), nullable=True))
        batch_op.create_index("ix_reports_category_code_created_at", ["category_code", "created_at"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_reports_merged_into_id_reports"), "reports", ["merged_into_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_reports_assignee_id_staff_users"), "staff_users", ["assignee_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_reports_assignee_id_staff_users"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_reports_merged_into_id_reports"), type_="foreignkey")
        batch_op.drop_index("ix_reports_category_code_created_at")
        batch_op.drop_column("satisfaction_comment")
        batch_op.drop_column("satisfaction_score")
        batch_op.drop_column("extension")
        batch_op.drop_column("rectification_round")
        batch_op.drop_column("appeals_used")
        batch_op.drop_column("finished_at")
        batch_op.drop_column("rejection_reason")
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("assignee_id")
        batch_op.drop_column("event_count")
        batch_op.drop_column("state_changed_at")
        batch_op.drop_column("wgs84_latitude")
        batch_op.drop_column("wgs84_longitude")

    op.drop_table("rectifications")
    with op.batch_alter_table("duplicate_candidates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duplicate_candidates_report_id"))

    op.drop_table("duplicate_candidates")
    op.drop_table("case_verifications")
    op.drop_table("case_events")
    with op.batch_alter_table("case_deadlines", schema=None) as batch_op:
        batch_op.drop_index("ix_case_deadlines_open_due")

    op.drop_table("case_deadlines")
    op.drop_table("deadline_policies")
    op.drop_table("calendar_years")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_target_id"))
        batch_op.drop_index("ix_audit_log_created_at")
        batch_op.drop_index(batch_op.f("ix_audit_log_action"))

    op.drop_table("audit_log")
