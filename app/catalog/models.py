"""Reference data that every part of the domain names: industry categories and departments."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, CreatedAt, UUIDPrimaryKey


class Category(CreatedAt, Base):
    """An industry field (行业领域). The national list is seeded by a migration; admins may add more."""

    __tablename__ = "categories"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Department(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # The jurisdiction the department belongs to (e.g. a county's 应急管理局 → the county's adcode).
    jurisdiction_adcode: Mapped[str | None] = mapped_column(String(12))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
