"""Reporters, opt-ins and outbox messages made through the real functions, and the outbox read back."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from typing import Any

from sqlalchemy import func, select, update

from app.core.config import Settings
from app.core.context import AppContext
from app.core.db import unit_of_work
from app.identity.service import find_or_create_reporter
from app.notifications.models import OutboxMessage, SubscriptionOptIn
from app.notifications.outbox import enqueue, record_opt_ins

APP_ID = "wx-outbox-test"
APP_SECRET = "outbox-test-secret"
# Our template keys → the template ids the fake knows.
TEMPLATES = {"accepted": "tmpl-status", "reward": "tmpl-reward"}
PAGE = "pages/report/detail?id=42"


def message_values(marker: str) -> dict[str, str]:
    """Template values carrying ``marker``, so each delivery at the fake can be traced to its message."""
    return {"character_string1": marker, "phrase3": "已受理", "time4": "2026-11-22 09:30"}


async def make_reporter(
    context: AppContext, openid: str, opt_ins: int = 0, template_key: str = "accepted"
) -> uuid.UUID:
    async with unit_of_work(context.sessions) as session:
        reporter = await find_or_create_reporter(session, context, openid)
        for _ in range(opt_ins):
            await record_opt_ins(session, reporter.id, [template_key], [template_key])
        return reporter.id


async def enqueue_messages(
    context: AppContext, reporter_id: uuid.UUID, markers: list[str], template_key: str = "accepted"
) -> None:
    async with unit_of_work(context.sessions) as session:
        for marker in markers:
            await enqueue(
                session,
                reporter_id=reporter_id,
                template_key=template_key,
                page=PAGE,
                values=message_values(marker),
                dedupe_key=f"{reporter_id}:{marker}",
            )


async def messages(context: AppContext) -> dict[str, OutboxMessage]:
    """Every outbox message by its marker."""
    async with unit_of_work(context.sessions) as session:
        rows = (await session.scalars(select(OutboxMessage))).all()
    return {row.values["character_string1"]: row for row in rows}


async def statuses(context: AppContext) -> Counter[str]:
    async with unit_of_work(context.sessions) as session:
        rows = await session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
    return Counter({status: count for status, count in rows})


async def wait_for(context: AppContext, status: str, count: int, seconds: float = 60) -> Counter[str]:
    """Poll until ``count`` messages have ``status`` (or the time is up); answers the last tally."""
    tally = await statuses(context)
    for _ in range(int(seconds * 10)):
        if tally[status] >= count:
            break
        await asyncio.sleep(0.1)
        tally = await statuses(context)
    return tally


async def available(context: AppContext, reporter_id: uuid.UUID, template_key: str = "accepted") -> int:
    async with unit_of_work(context.sessions) as session:
        count = await session.scalar(
            select(SubscriptionOptIn.available).where(
                SubscriptionOptIn.reporter_id == reporter_id, SubscriptionOptIn.template_key == template_key
            )
        )
    return count or 0


async def make_due(context: AppContext, **where: Any) -> None:
    """Bring retry times forward to now, as if the backoff had passed."""
    async with unit_of_work(context.sessions) as session:
        await session.execute(update(OutboxMessage).filter_by(**where).values(next_attempt_at=OutboxMessage.created_at))


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment that gives a worker or API process these settings (nothing else reads the environment)."""
    return {
        "HAZARD_ENVIRONMENT": "test",
        "HAZARD_LOG_LEVEL": "WARNING",
        "HAZARD_DATABASE__URL": settings.database.url,
        "HAZARD_STORAGE__LOCAL_ROOT": str(settings.storage.local_root),
        "HAZARD_WECHAT__API_BASE": settings.wechat.api_base,
        "HAZARD_WECHAT__APP_ID": settings.wechat.app_id,
        "HAZARD_WECHAT__APP_SECRET": settings.wechat.app_secret,
        "HAZARD_WECHAT__TIMEOUT_SECONDS": str(settings.wechat.timeout_seconds),
        "HAZARD_WECHAT__TEMPLATES": json.dumps(settings.wechat.templates),
        "HAZARD_WORKER_BATCH_SIZE": str(settings.worker_batch_size),
        "HAZARD_WORKER_IDLE_SECONDS": str(settings.worker_idle_seconds),
    }


def delivered_markers(sent_bodies: list[dict[str, Any]]) -> Counter[str]:
    """How many times the fake WeChat delivered each message."""
    return Counter(body["data"]["character_string1"]["value"] for body in sent_bodies)
