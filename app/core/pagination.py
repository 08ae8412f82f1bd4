"""Keyset pagination over (created_at, id), newest first: stable under inserts, no OFFSET scans."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import InvalidInput


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"
    message = "分页游标无效"


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, row_id = raw.split("|")
        parsed = datetime.fromisoformat(created_at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, uuid.UUID(row_id)
    except ValueError as exc:
        raise InvalidCursor(field="cursor") from exc


def newest_first(
    query: Select[Any],
    created_at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[uuid.UUID],
    cursor: str | None,
    limit: int,
) -> Select[Any]:
    """Order newest first and start after ``cursor``; fetches one row more than ``limit`` to tell if more follow."""
    query = query.order_by(created_at.desc(), row_id.desc()).limit(limit + 1)
    if cursor is None:
        return query
    after_time, after_id = decode_cursor(cursor)
    return query.where(after(created_at, row_id, after_time, after_id))


def after(created_at: Any, row_id: Any, after_time: Any, after_id: Any) -> ColumnElement[bool]:
    """The rows that follow (``after_time``, ``after_id``) newest first: values, or bound parameters of a statement
    built once and run with the values of each cursor."""
    return or_(created_at < after_time, and_(created_at == after_time, row_id < after_id))
