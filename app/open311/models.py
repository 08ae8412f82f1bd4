from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, CreatedAt, UUIDPrimaryKey


class PartnerKey(UUIDPrimaryKey, CreatedAt, Base):
    """An API key of a partner platform (Open311 POST). Only a keyed hash of the key is stored; the key itself is
    shown once, when an admin creates it."""

    __tablename__ = "partner_keys"

    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the key, so that an admin can tell keys apart without the key.
    key_hint: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(80))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
