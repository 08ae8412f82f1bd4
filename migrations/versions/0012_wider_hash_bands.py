"""photo hash bands of 16 bits: four a hash, looked up with their one-bit neighbours (8-bit bands matched one
upload in 256, so every submission read thousands of rows once a few hundred thousand photos were stored)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 08:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000
HASH_BITS = 64


def upgrade() -> None:
    _rebuild(band_bits=16, value_type=sa.Integer())


def downgrade() -> None:
    _rebuild(band_bits=8, value_type=sa.SmallInteger())


def _rebuild(band_bits: int, value_type: sa.types.TypeEngine[int]) -> None:
    """The table made again with bands of this width, filled from the uploads' hashes, indexed after the fill."""
    with op.batch_alter_table("photo_hash_bands", schema=None) as batch_op:
        batch_op.drop_index("ix_photo_hash_bands_lookup")
    op.drop_table("photo_hash_bands")
    op.create_table(
        "photo_hash_bands",
        sa.Column("upload_id", sa.Uuid(), nullable=False),
        sa.Column("band", sa.SmallInteger(), nullable=False),
        sa.Column("value", value_type, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"], ["uploads.id"], name=op.f("fk_photo_hash_bands_upload_id_uploads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("upload_id", "band", name=op.f("pk_photo_hash_bands")),
    )
    _backfill(band_bits)
    with op.batch_alter_table("photo_hash_bands", schema=None) as batch_op:
        batch_op.create_index("ix_photo_hash_bands_lookup", ["band", "value", "created_at"], unique=False)


def _backfill(band_bits: int) -> None:
    bind = op.get_bind()
    digits, bands = band_bits // 4, HASH_BITS // band_bits
    if bind.dialect.name == "postgresql":
        op.execute(
            "INSERT INTO photo_hash_bands (upload_id, band, value, created_at) "
            f"SELECT u.id, b.band, ('x' || substr(u.perceptual_hash, {digits} * b.band + 1, {digits}))"
            f"::bit({band_bits})::int, u.created_at "
            f"FROM uploads u CROSS JOIN generate_series(0, {bands - 1}) AS b(band)"
        )
        return
    # SQLite: no hexadecimal parsing in SQL; the embedded database is small.
    uploads = sa.table("uploads", sa.column("id", sa.Uuid()), sa.column("perceptual_hash"), sa.column("created_at"))
    table = sa.table(
        "photo_hash_bands",
        sa.column("upload_id", sa.Uuid()),
        sa.column("band"),
        sa.column("value"),
        sa.column("created_at"),
    )
    rows = bind.execute(sa.select(uploads.c.id, uploads.c.perceptual_hash, uploads.c.created_at)).all()
    values = [
        {
            "upload_id": upload_id,
            "band": band,
            "value": int(digest[digits * band : digits * (band + 1)], 16),
            "created_at": at,
        }
        for upload_id, digest, at in rows
        for band in range(bands)
    ]
    for start in range(0, len(values), BATCH):
        bind.execute(sa.insert(table), values[start : start + BATCH])
