"""Looking up reference data that several parts of the domain name."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.errors import UnknownDepartment
from app.catalog.models import Department


async def active_department(session: AsyncSession, code: str) -> Department:
    """The active department with this code, or 422 ``unknown_department`` naming the field."""
    department = await session.scalar(select(Department).where(Department.code == code, Department.is_active))
    if department is None:
        raise UnknownDepartment(field="department_code")
    return department
