"""photo hash bands: similar photos found by index, one row per byte of each upload's perceptual hash

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 02:08:50.187367
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "photo_hash_bands",
        sa.Column("upload_id", sa.Uuid(), nullable=False),
        sa.Column("band", sa.SmallInteger(), nullable=False),
        sa.Column("value", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"], ["uploads.id"], name=op.f("fk_photo_hash_bands_upload_id_uploads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("upload_id", "band", name=op.f("pk_photo_hash_bands")),
    )
    _backfill()
    with op.batch_alter_table("photo_hash_bands", schema=None) as batch_op:
        batch_op.create_index("ix_photo_hash_bands_lookup", ["band", "value", "created_at"], unique=False)


def _backfill() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "INSERT INTO photo_hash_bands (upload_id, band, value, created_at) "
            "SELECT u.id, b.band, ('x' || substr(u.perceptual_hash, 2 * b.band + 1, 2))::bit(8)::int, u.created_at "
            "FROM uploads u CROSS JOIN generate_series(0, 7) AS b(band)"
        )
        return
    # SQLite: no hexadecimal parsing in SQL; the embedded database is small.
    uploads = sa.table("uploads", sa.column("id", sa.Uuid()), sa.column("perceptual_hash"), sa.column("created_at"))
    bands = sa.table(
        "photo_hash_bands",
        sa.column("upload_id", sa.Uuid()),
        sa.column("band"),
        sa.column("value"),
        sa.column("created_at"),
    )
    rows = bind.execute(sa.select(uploads.c.id, uploads.c.perceptual_hash, uploads.c.created_at)).all()
    values = [
        {"upload_id": upload_id, "band": band, "value": int(digest[2 * band : 2 * band + 2], 16), "created_at": at}
        for upload_id, digest, at in rows
        for band in range(8)
    ]
    for start in range(0, len(values), BATCH):
        bind.execute(sa.insert(bands), values[start : start + BATCH])


def downgrade() -> None:
    with op.batch_alter_table("photo_hash_bands", schema=None) as batch_op:
        batch_op.drop_index("ix_photo_hash_bands_lookup")
    op.drop_table("photo_hash_bands")
