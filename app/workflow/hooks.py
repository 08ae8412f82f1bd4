"""What other parts of the domain do, in the same transaction, when a case's findings change.

The workflow does not know about rewards (dependencies point workflow → rewards); rewards registers here at
start-up (``app.rewards.service.install``) and is then called inside the verify and record-penalty commands, so a
reward proposal commits, or vanishes, with the finding that caused it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from app.intake.models import Report


class Finding(StrEnum):
    VERIFIED = "verified"  # a verification was recorded (any outcome)
    PENALTY = "penalty"  # an administrative penalty decision was recorded


FindingListener = Callable[[AsyncSession, Report, Finding], Awaitable[None]]
_listeners: list[FindingListener] = []


def on_finding(listener: FindingListener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


async def finding_recorded(session: AsyncSession, report: Report, finding: Finding) -> None:
    for listener in _listeners:
        await listener(session, report, finding)
