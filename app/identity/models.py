from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, CreatedAt, UUIDPrimaryKey


class Reporter(UUIDPrimaryKey, CreatedAt, Base):
    """A mini-program user. Identity lives here, apart from the reports; the openid is encrypted at rest."""

    __tablename__ = "reporters"

    openid_index: Mapped[str] = mapped_column(String(64), unique=True)
    openid_encrypted: Mapped[str] = mapped_column(String(200))
    last_login_at: Mapped[datetime]


class StaffUser(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "staff_users"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    department_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("departments.id"), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
