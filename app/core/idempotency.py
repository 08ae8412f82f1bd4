"""Idempotency keys: a retried request with the same key gets the first answer again, never a second effect.

The key is claimed with INSERT ... ON CONFLICT DO NOTHING in the same transaction as the effect it guards, so the
claim and the effect commit or vanish together (no in-progress state can outlive a crash). A concurrent duplicate
on PostgreSQL waits on the claim's unique index and then replays the committed answer. The stored answer is
encrypted, because it can hold a once-shown secret (a report's query code); records are purged after a day.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Header
from sqlalchemy import Integer, String, Text, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, insert_or_ignore, utcnow
from app.core.errors import InvalidInput
from app.core.security import FieldCipher

_KEY_REGEX = r"^[\x21-\x7e]{1,255}$"
_KEY_PATTERN = re.compile(_KEY_REGEX)
# The schema states the rule the checks below enforce (with their own code), so what it admits is accepted.
_KEY_SCHEMA = {"pattern": _KEY_REGEX, "minLength": 1, "maxLength": 255}


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"
    message = "该 Idempotency-Key 已用于内容不同的请求"


class InvalidIdempotencyKey(InvalidInput):
    code = "invalid_idempotency_key"
    message = "Idempotency-Key 格式不合法（1 至 255 个可见 ASCII 字符）"


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    principal: Mapped[str] = mapped_column(String(80), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any


async def idempotency_key_header(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="重试安全：同一键与同一内容返回同一结果",
            json_schema_extra=_KEY_SCHEMA,
        ),
    ] = None,
) -> str | None:
    if idempotency_key is not None and not _KEY_PATTERN.fullmatch(idempotency_key):
        raise InvalidIdempotencyKey(field="Idempotency-Key")
    return idempotency_key


async def required_idempotency_key_header(
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            description="涉及资金的操作必填：同一键与同一内容返回同一结果，重试安全",
            json_schema_extra=_KEY_SCHEMA,
        ),
    ],
) -> str:
    if not _KEY_PATTERN.fullmatch(idempotency_key):
        raise InvalidIdempotencyKey(field="Idempotency-Key")
    return idempotency_key


@dataclass
class IdempotencyClaim:
    principal: str
    operation: str
    key: str


async def claim(
    session: AsyncSession, cipher: FieldCipher, claim: IdempotencyClaim, fingerprint: str
) -> StoredResponse | None:
    """Claim the key for this request, or return the answer recorded for it. None means: go ahead, then
    :func:`record`."""
    inserted = await insert_or_ignore(
        session,
        IdempotencyRecord,
        {
            "principal": claim.principal,
            "operation": claim.operation,
            "key": claim.key,
            "fingerprint": fingerprint,
            "created_at": utcnow(),
        },
        ["principal", "operation", "key"],
    )
    if inserted:
        return None
    existing = await session.get(IdempotencyRecord, (claim.principal, claim.operation, claim.key))
    if existing is None or existing.status_code is None or existing.response_encrypted is None:
        # Only possible if the row was purged between the two statements; treat the key as fresh.
        raise IdempotencyKeyReused()
    if existing.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return StoredResponse(existing.status_code, json.loads(cipher.decrypt(existing.response_encrypted)))


async def record(
    session: AsyncSession, cipher: FieldCipher, claim: IdempotencyClaim, status_code: int, body: Any
) -> None:
    result = await session.execute(RECORD, record_parameters(cipher, claim, status_code, body))
    assert result.rowcount == 1, "record() without a successful claim()"  # type: ignore[attr-defined]


_RECORDS = IdempotencyRecord.__table__
# The UPDATE that records the answer of a claimed key, built once (its parameters from record_parameters), so that
# a caller can also send it with other statements (report submission does).
RECORD = (
    update(_RECORDS)
    .where(
        _RECORDS.c.principal == bindparam("idempotency_principal"),
        _RECORDS.c.operation == bindparam("idempotency_operation"),
        _RECORDS.c.key == bindparam("idempotency_key"),
    )
    .values(status_code=bindparam("idempotency_status"), response_encrypted=bindparam("idempotency_response"))
)


def record_parameters(cipher: FieldCipher, claim: IdempotencyClaim, status_code: int, body: Any) -> dict[str, Any]:
    return {
        "idempotency_principal": claim.principal,
        "idempotency_operation": claim.operation,
        "idempotency_key": claim.key,
        "idempotency_status": status_code,
        "idempotency_response": cipher.encrypt(json.dumps(body, ensure_ascii=False, separators=(",", ":"))),
    }


async def find(session: AsyncSession, claim: IdempotencyClaim) -> IdempotencyRecord | None:
    return await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.principal == claim.principal,
            IdempotencyRecord.operation == claim.operation,
            IdempotencyRecord.key == claim.key,
        )
    )


async def purge_expired(session: AsyncSession, older_than: timedelta) -> int:
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
