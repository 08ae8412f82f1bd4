"""Writing to the notification outbox and counting subscription opt-ins, inside the caller's transaction.

Both functions flush at most and never commit: the message or the opt-in commits (or vanishes) with the change
that caused it. Nothing here talks to WeChat; ``app.notifications.worker`` sends after the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import dialect_insert, insert_or_ignore, utcnow
from app.core.errors import InvalidInput
from app.notifications.models import OutboxMessage, SubscriptionOptIn


class OptInNotRequested(InvalidInput):
    code = "opt_in_not_requested"
    message = "接受的订阅消息模板不在本次请求之列"


async def enqueue(
    session: AsyncSession,
    *,
    reporter_id: uuid.UUID,
    template_key: str,
    page: str,
    values: Mapping[str, str],
    dedupe_key: str,
) -> None:
    """Record a message to send after the commit; a second enqueue with the same ``dedupe_key`` is a no-op.

    Template values are not checked here: a value WeChat would refuse must not roll back the case change that
    caused the message, so it is refused (and recorded as failed) at send time instead.
    """
    await insert_or_ignore(
        session,
        OutboxMessage,
        {
            "dedupe_key": dedupe_key,
            "reporter_id": reporter_id,
            "template_key": template_key,
            "page": page,
            "values": dict(values),
        },
        ["dedupe_key"],
    )


async def record_opt_ins(
    session: AsyncSession, reporter_id: uuid.UUID, template_keys: list[str], accepted: list[str]
) -> dict[str, int]:
    """Count the answer to one wx.requestSubscribeMessage: one more message allowed for each accepted key.

    ``template_keys`` are the keys the mini-program asked about, ``accepted`` those the user accepted (WeChat's
    "accept"; "reject", "ban" and "filter" add nothing). Answers how many messages each asked key now allows.
    """
    unasked = sorted(set(accepted) - set(template_keys))
    if unasked:
        raise OptInNotRequested(field="accepted", keys=unasked)
    insert = dialect_insert(session)
    now = utcnow()
    counts: dict[str, int] = {}
    # Sorted: two concurrent answers of the same reporter lock the rows in the same order (no deadlock).
    for key in sorted(set(accepted)):
        statement = insert(SubscriptionOptIn).values(
            reporter_id=reporter_id, template_key=key, available=1, updated_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=["reporter_id", "template_key"],
            set_={"available": SubscriptionOptIn.available + 1, "updated_at": now},
        ).returning(SubscriptionOptIn.available)
        counts[key] = (await session.execute(statement)).scalar_one()
    rest = [key for key in template_keys if key not in counts]
    if rest:
        rows = await session.execute(
            select(SubscriptionOptIn.template_key, SubscriptionOptIn.available).where(
                SubscriptionOptIn.reporter_id == reporter_id, SubscriptionOptIn.template_key.in_(rest)
            )
        )
        counts.update({key: 0 for key in rest})
        counts.update({key: count for key, count in rows})
    return {key: counts[key] for key in template_keys}
