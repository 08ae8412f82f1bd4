"""Who is calling: bearer-token principals for reporters and staff, and permission checks."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Row, bindparam, select

from app.core.context import AppContext, get_context
from app.core.errors import Forbidden, Unauthenticated
from app.core.security import InvalidToken
from app.identity.errors import WrongAudience
from app.identity.models import StaffUser
from app.identity.roles import Permission, Role, has_permission

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>` from a login endpoint")
# Built once: making the statement and its cache key cost more CPU than running it (about 0.2 ms a request).
_ACTIVE_STAFF = select(StaffUser.username, StaffUser.role, StaffUser.department_id).where(
    StaffUser.id == bindparam("staff_id"), StaffUser.is_active
)


@dataclass(frozen=True)
class ReporterPrincipal:
    reporter_id: uuid.UUID

    @property
    def key(self) -> str:
        return f"reporter:{self.reporter_id}"


@dataclass(frozen=True)
class StaffPrincipal:
    staff_id: uuid.UUID
    username: str
    role: Role
    department_id: uuid.UUID | None

    @property
    def key(self) -> str:
        return f"staff:{self.staff_id}"

    def require(self, permission: Permission) -> None:
        if not has_permission(self.role, permission):
            raise Forbidden()


@dataclass(frozen=True)
class PartnerPrincipal:
    """A partner channel (another platform submitting through Open311 with its API key), not a person."""

    partner_id: uuid.UUID
    name: str

    @property
    def key(self) -> str:
        return f"partner:{self.partner_id}"


Principal = ReporterPrincipal | StaffPrincipal
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated()
    return credentials.credentials


def _reporter_from(context: AppContext, token: str) -> ReporterPrincipal:
    return _reporter_of(context.tokens.decode(token, context.settings.security.reporter_audience))


def _reporter_of(claims: dict[str, Any]) -> ReporterPrincipal:
    subject = str(claims["sub"])
    if not subject.startswith("reporter:"):
        raise InvalidToken()
    try:
        return ReporterPrincipal(reporter_id=uuid.UUID(subject.removeprefix("reporter:")))
    except ValueError as exc:
        raise InvalidToken() from exc


async def _staff_from(context: AppContext, token: str) -> StaffPrincipal:
    return await _staff_of(context, context.tokens.decode(token, context.settings.security.staff_audience))


async def _staff_of(context: AppContext, claims: dict[str, Any]) -> StaffPrincipal:
    subject = str(claims["sub"])
    try:
        staff_id = uuid.UUID(subject.removeprefix("staff:"))
    except ValueError as exc:
        raise InvalidToken() from exc
    # Staff are looked up on every request so that a deactivated account or a changed role takes effect at once.
    row = await _active_staff(context, staff_id)
    if row is None or not subject.startswith("staff:"):
        raise InvalidToken()
    return StaffPrincipal(staff_id, row.username, Role(row.role), row.department_id)


async def _active_staff(context: AppContext, staff_id: uuid.UUID) -> Row[tuple[str, str, uuid.UUID | None]] | None:
    """One read of the account, on a connection of its own (routes that hold no request transaction, uploads, must
    not get one from here) and on PostgreSQL outside any transaction: one round trip, where a unit of work with an
    ORM get cost three (BEGIN, the SELECT, COMMIT) on every staff request."""
    async with context.read_engine.connect() as connection:
        return (await connection.execute(_ACTIVE_STAFF, {"staff_id": staff_id})).first()


async def current_reporter(
    credentials: Credentials, context: Annotated[AppContext, Depends(get_context)]
) -> ReporterPrincipal:
    token = _token(credentials)
    if context.tokens.audience_of(token) != context.settings.security.reporter_audience:
        raise WrongAudience()
    return _reporter_from(context, token)


async def current_staff(
    credentials: Credentials,
    context: Annotated[AppContext, Depends(get_context)],
) -> StaffPrincipal:
    token = _token(credentials)
    if context.tokens.audience_of(token) != context.settings.security.staff_audience:
        raise WrongAudience()
    return await _staff_from(context, token)


async def current_principal(
    credentials: Credentials,
    context: Annotated[AppContext, Depends(get_context)],
) -> Principal:
    # One verified decode against either audience (the token names one, a string), then the principal of that kind.
    security = context.settings.security
    claims = context.tokens.decode(_token(credentials), [security.reporter_audience, security.staff_audience])
    if claims["aud"] == security.staff_audience:
        return await _staff_of(context, claims)
    if claims["aud"] == security.reporter_audience:
        return _reporter_of(claims)
    raise InvalidToken()  # an audience list naming ours


def requires(permission: Permission) -> Callable[[StaffPrincipal], Awaitable[StaffPrincipal]]:
    """A route dependency: the caller is staff holding ``permission`` (403 otherwise)."""

    async def dependency(staff: Annotated[StaffPrincipal, Depends(current_staff)]) -> StaffPrincipal:
        staff.require(permission)
        return staff

    return dependency


def requires_any(*permissions: Permission) -> Callable[[StaffPrincipal], Awaitable[StaffPrincipal]]:
    """A route dependency: the caller is staff holding at least one of ``permissions`` (403 otherwise)."""

    async def dependency(staff: Annotated[StaffPrincipal, Depends(current_staff)]) -> StaffPrincipal:
        if not any(has_permission(staff.role, p) for p in permissions):
            raise Forbidden()
        return staff

    return dependency


CurrentReporter = Annotated[ReporterPrincipal, Depends(current_reporter)]
CurrentStaff = Annotated[StaffPrincipal, Depends(current_staff)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
