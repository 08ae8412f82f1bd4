"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 10:52:56.040722
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

NATIONAL_CATEGORIES = [
    ("hazardous_chemicals", "危险化学品"),
    ("fireworks", "烟花爆竹"),
    ("coal_mine", "煤矿"),
    ("non_coal_mine", "非煤矿山"),
    ("construction", "建筑施工"),
    ("road_traffic", "道路交通"),
    ("waterway_traffic", "水上交通"),
    ("gas", "燃气"),
    ("fire_safety", "消防"),
    ("tourism", "旅游"),
    ("campus", "校园"),
    ("commerce", "商贸"),
    ("special_equipment", "特种设备"),
    ("self_built_housing", "自建房"),
    ("e_bike_charging", "电动自行车充电"),
    ("confined_space", "有限空间"),
    ("industry_dust", "工贸/粉尘涉爆"),
    ("metallurgy", "冶金"),
    ("agricultural_machinery", "农机"),
    ("fishing_vessels", "渔业船舶"),
    ("other", "其他"),
]

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "categories",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_categories")),
    )
    op.create_table(
        "departments",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_departments")),
        sa.UniqueConstraint("code", name=op.f("uq_departments_code")),
    )
    op.create_table(
        "idempotency_records",
        sa.Column("principal", sa.String(length=80), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_encrypted", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("principal", "operation", "key", name=op.f("pk_idempotency_records")),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_records_created_at"), ["created_at"], unique=False)

    op.create_table(
        "report_number_counters",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", "region_code", name=op.f("pk_report_number_counters")),
    )
    op.create_table(
        "reporters",
        sa.Column("openid_index", sa.String(length=64), nullable=False),
        sa.Column("openid_encrypted", sa.String(length=200), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reporters")),
        sa.UniqueConstraint("openid_index", name=op.f("uq_reporters_openid_index")),
    )
    op.create_table(
        "staff_users",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("department_id", sa.Uuid(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_staff_users_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_users_username")),
    )
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_users_department_id"), ["department_id"], unique=False)

    op.create_table(
        "reports",
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("reporter_id", sa.Uuid(), nullable=True),
        sa.Column("filed_by_staff_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("category_code", sa.String(length=40), nullable=False),
        sa.Column("hazard_kind", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("datum", sa.String(length=8), nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enterprise_name", sa.String(length=200), nullable=True),
        sa.Column("enterprise_credit_code", sa.String(length=18), nullable=True),
        sa.Column("reporter_is_employee", sa.Boolean(), nullable=False),
        sa.Column("identity_hidden", sa.Boolean(), nullable=False),
        sa.Column("query_code_hash", sa.String(length=200), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_code"], ["categories.code"], name=op.f("fk_reports_category_code_categories")
        ),
        sa.ForeignKeyConstraint(
            ["filed_by_staff_id"], ["staff_users.id"], name=op.f("fk_reports_filed_by_staff_id_staff_users")
        ),
        sa.ForeignKeyConstraint(["reporter_id"], ["reporters.id"], name=op.f("fk_reports_reporter_id_reporters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("number", name=op.f("uq_reports_number")),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index("ix_reports_reporter_id_created_at", ["reporter_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_reports_state"), ["state"], unique=False)

    op.create_table(
        "report_contacts",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("name_encrypted", sa.String(length=300), nullable=True),
        sa.Column("phone_encrypted", sa.String(length=300), nullable=True),
        sa.Column("phone_index", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_report_contacts_report_id_reports")),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_report_contacts")),
    )
    with op.batch_alter_table("report_contacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_contacts_phone_index"), ["phone_index"], unique=False)

    op.create_table(
        "uploads",
        sa.Column("owner", sa.String(length=80), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("perceptual_hash", sa.String(length=16), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("mime_type", sa.String(length=40), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("original_key", sa.String(length=200), nullable=False),
        sa.Column("display_key", sa.String(length=200), nullable=False),
        sa.Column("thumbnail_key", sa.String(length=200), nullable=False),
        sa.Column("exif_captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exif_longitude", sa.Float(), nullable=True),
        sa.Column("exif_latitude", sa.Float(), nullable=True),
        sa.Column("report_id", sa.Uuid(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_uploads_report_id_reports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
        sa.UniqueConstraint("owner", "sha256", name=op.f("uq_uploads_owner_sha256")),
    )
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_uploads_report_id"), ["report_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_uploads_sha256"), ["sha256"], unique=False)

    _seed_categories()


def _seed_categories() -> None:
    """The national list of industry categories from the brief; admins may add more later."""
    categories = sa.table(
        "categories",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("sort_order", sa.Integer),
        sa.column("is_active", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        categories,
        [
            {"code": code, "name": name, "sort_order": index, "is_active": True, "created_at": now}
            for index, (code, name) in enumerate(NATIONAL_CATEGORIES)
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_uploads_sha256"))
        batch_op.drop_index(batch_op.f("ix_uploads_report_id"))

    op.drop_table("uploads")
    with op.batch_alter_table("report_contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_contacts_phone_index"))

    op.drop_table("report_contacts")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_state"))
        batch_op.drop_index("ix_reports_reporter_id_created_at")

    op.drop_table("reports")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_users_department_id"))

    op.drop_table("staff_users")
    op.drop_table("reporters")
    op.drop_table("report_number_counters")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_created_at"))

    op.drop_table("idempotency_records")
    op.drop_table("departments")
    op.drop_table("categories")
