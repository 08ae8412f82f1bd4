"""The outbox worker: sends committed outbox messages to WeChat, with retries, from any number of processes.

One pass (:func:`drain_once`) is three steps, and no transaction is open while WeChat is called:

1. **Claim**, one short transaction. Due messages (``pending`` whose ``next_attempt_at`` has come, or ``sending``
   whose lease ``claimed_until`` has passed) are selected ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent
   workers take disjoint sets without waiting on each other; on SQLite the transaction's ``BEGIN IMMEDIATE`` write
   lock serialises claims instead. They become ``sending`` with a lease and ``attempts + 1``. A message claimed
   for the first time takes one opt-in of its reporter and template in the same transaction
   (``available = available - 1 WHERE available > 0``); with none left it becomes ``no_opt_in`` and is never sent.
2. **Send** each claimed message, a few at a time, each within a deadline well inside the lease.
3. **Record** each result as soon as it is known, in one short transaction with any that came in meanwhile:
   ``sent``; ``refused`` (43101, and the opt-in count is set to 0, WeChat having told us it is); ``failed``
   (WeChat refused the message itself, or :data:`MAX_ATTEMPTS` claims were used); or back to ``pending`` after
   :func:`~app.notifications.wechat.backoff_seconds`. The record applies only while the row is still ``sending``
   with the ``attempts`` this worker claimed it at (the fencing token), so a worker that lost its lease cannot
   overwrite the record of the worker that took the message over.

The opt-in a message takes at its first claim stays reserved for it through retries and reclaims, and goes back
to the count only if the message ends ``failed`` (nothing was delivered). So a message waiting out WeChat's
"system busy" keeps its place: a later message of the same template cannot take the opt-in from under it, and a
message reclaimed after a crash cannot take a second one.

Exactly once, and the window where it is at least once
-------------------------------------------------------
A message is sent by at most one worker at a time (the claim) and never after its result is recorded. The one
window where a message can go out twice runs from the moment WeChat receives the send request to the commit of
its result: if the worker dies in it (kill -9, power loss, a pause longer than the rest of the lease), the row
stays ``sending``, its lease ends and another worker sends the message again, though WeChat may have delivered
it already. The window is one WeChat round trip plus one short transaction: each result is recorded as soon as
it is known (not after the whole batch), and a failed record is retried for a few seconds. The kill test in
``tests/api/notifications/test_many_processes.py`` shows it: the sends a killed worker had in flight are
delivered again after its lease; nothing else is. The same ambiguity exists, and cannot be removed, when
WeChat's answer is lost (a timeout after the request reached it): the sender calls that ``RETRY_LATER`` and we
retry, because WeChat's send API takes no idempotency key. In both cases WeChat's own count of the user's
subscriptions bounds the harm: a duplicate spends a subscription the user granted, or is refused with 43101.

The lease is never outlived by a send that started inside it: a message is only sent if the lease has at least
:func:`send_deadline` left, and every send is cut off at that deadline. Lease times come from each worker's
clock, so the hosts' clocks must agree to well within :data:`MIN_LEASE` (NTP does).

Stopping: set the ``stop`` event given to :func:`run_worker` and await the task; the current pass finishes its
sends and records first. Cancelling the task instead can interrupt a send and leave its message to the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import AppContext
from app.core.db import unit_of_work, utcnow
from app.identity.models import Reporter
from app.notifications.models import OPEN_STATUSES, OutboxMessage, OutboxStatus, SubscriptionOptIn
from app.notifications.wechat import SendResult, SendStatus, WeChatMessageSender, backoff_seconds

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# Sends in flight at once per worker: enough to hide WeChat's latency, few enough not to trip 45011.
SEND_CONCURRENCY = 8
# Tries of a result's record before it is left to the lease, 1 s, 2 s and 4 s apart.
RECORD_TRIES = 4
RECORD_BUDGET = timedelta(seconds=10)
# Below this a lease would leave too little room for the hosts' clocks to disagree.
MIN_LEASE = timedelta(seconds=30)
_LAST_ERROR_MAX = 300
# These sessions load no objects, so the ORM need not look for any to keep in step with an UPDATE.
_NO_SYNC = {"synchronize_session": False}
_CACHE_KEY = "notifications"


@dataclass
class DrainResult:
    # Due messages this pass took (at most worker_batch_size), and of those the ones claimed for sending.
    due: int = 0
    claimed: int = 0
    sent: int = 0
    refused: int = 0
    no_opt_in: int = 0
    failed: int = 0
    retrying: int = 0
    # Results not recorded because another worker took the message over (the lease had expired).
    lease_lost: int = 0
    # Results that could not be recorded (the database was unreachable); the lease brings them back.
    unrecorded: int = 0


@dataclass(frozen=True)
class _Claim:
    id: uuid.UUID
    reporter_id: uuid.UUID
    template_key: str
    page: str
    values: dict[str, str]
    attempts: int
    openid_encrypted: str
    lease_until: datetime


def send_deadline(context: AppContext) -> timedelta:
    """The longest one send may take: a token fetch, the send, and a token refresh with a second send."""
    return timedelta(seconds=4 * context.settings.wechat.timeout_seconds + 1)


def lease(context: AppContext) -> timedelta:
    """How long a claim lasts: twice the longest a worker can legitimately take over a whole batch (every send
    slot used to the deadline, then the last record retried): about 5 minutes with the default settings."""
    rounds = math.ceil(context.settings.worker_batch_size / SEND_CONCURRENCY)
    return max(MIN_LEASE, 2 * (rounds * send_deadline(context) + RECORD_BUDGET))


def _sender(context: AppContext) -> WeChatMessageSender:
    """One sender per process, so its access token is shared by every pass and every worker task."""
    cache: dict[str, Any] = context.caches.setdefault(_CACHE_KEY, {})
    sender = cache.get("sender")
    if sender is None:
        wechat = context.settings.wechat
        sender = cache["sender"] = WeChatMessageSender(wechat, context.http, miniprogram_state=wechat.miniprogram_state)
    return sender


async def drain_once(context: AppContext) -> DrainResult:
    """Claim up to ``worker_batch_size`` due messages, send them and record the results."""
    result = DrainResult()
    claims = await _claim(context, result)
    if not claims:
        return result
    sender = _sender(context)
    slots = asyncio.Semaphore(SEND_CONCURRENCY)
    outcomes: asyncio.Queue[tuple[_Claim, SendResult]] = asyncio.Queue()

    async def deliver(claim: _Claim) -> None:
        async with slots:
            outcome = await _send(context, sender, claim)
        outcomes.put_nowait((claim, outcome))

    sending = asyncio.gather(*(deliver(claim) for claim in claims))
    # Each result is recorded as soon as the record before it is done: those that came in meanwhile go together
    # in one transaction. The window between a send and its record stays one short transaction long, and a
    # busy worker needs far fewer transactions than messages.
    unrecorded = len(claims)
    while unrecorded:
        ready = [await outcomes.get()]
        while not outcomes.empty():
            ready.append(outcomes.get_nowait())
        unrecorded -= len(ready)
        await _record(context, ready, result)
    await sending
    log.info("outbox drained", extra=result.__dict__)
    return result


async def run_worker(context: AppContext, *, stop: asyncio.Event | None = None) -> None:
    """Drain until ``stop`` is set: straight on while full batches come, else every ``worker_idle_seconds``."""
    stop = stop or asyncio.Event()
    settings = context.settings
    while not stop.is_set():
        busy = False
        try:
            busy = (await drain_once(context)).due >= settings.worker_batch_size
        except Exception:
            log.exception("outbox drain failed; will retry")
        if busy:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.worker_idle_seconds)


# --- 1. claim ------------------------------------------------------------------------------------------------


async def _claim(context: AppContext, result: DrainResult) -> list[_Claim]:
    now = utcnow()
    lease_until = now + lease(context)
    due_messages = (
        select(
            OutboxMessage.id,
            OutboxMessage.reporter_id,
            OutboxMessage.template_key,
            OutboxMessage.page,
            OutboxMessage.values,
            OutboxMessage.status,
            OutboxMessage.attempts,
            Reporter.openid_encrypted,
        )
        .join(Reporter, Reporter.id == OutboxMessage.reporter_id)
        .where(
            OutboxMessage.status.in_(OPEN_STATUSES),
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.claimed_until <= now),
        )
        .order_by(OutboxMessage.next_attempt_at)
        .limit(context.settings.worker_batch_size)
        # Rendered as FOR UPDATE OF notification_outbox SKIP LOCKED on PostgreSQL; SQLite has none and needs none.
        .with_for_update(of=OutboxMessage, skip_locked=True)
    )
    async with unit_of_work(context.sessions) as session:
        rows = (await session.execute(due_messages)).all()
        if not rows:
            return []
        # A message whose lease ran out MAX_ATTEMPTS times is taken to crash its worker: stop trying.
        exhausted = [row.id for row in rows if row.status == OutboxStatus.SENDING and row.attempts >= MAX_ATTEMPTS]
        first_claims = [row for row in rows if row.attempts == 0]
        # In key order, so that concurrent claims lock opt-in rows in the same order and never deadlock.
        first_claims.sort(key=lambda row: (row.reporter_id, row.template_key))
        without = {row.id for row in first_claims if not await _take_opt_in(session, row, now)}
        claimed = [row for row in rows if row.id not in without and row.id not in exhausted]
        await _close(session, exhausted, OutboxStatus.FAILED, f"lease expired {MAX_ATTEMPTS} times")
        await _close(session, list(without), OutboxStatus.NO_OPT_IN, "no subscription opt-in counted")
        if claimed:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([row.id for row in claimed]))
                .values(status=OutboxStatus.SENDING, claimed_until=lease_until, attempts=OutboxMessage.attempts + 1),
                execution_options=_NO_SYNC,
            )
    result.due, result.claimed = len(rows), len(claimed)
    result.failed += len(exhausted)
    result.no_opt_in += len(without)
    return [
        _Claim(
            id=row.id,
            reporter_id=row.reporter_id,
            template_key=row.template_key,
            page=row.page,
            values=row.values,
            attempts=row.attempts + 1,
            openid_encrypted=row.openid_encrypted,
            lease_until=lease_until,
        )
        for row in claimed
    ]


async def _take_opt_in(session: AsyncSession, row: Any, now: datetime) -> bool:
    taken = await session.execute(
        update(SubscriptionOptIn)
        .where(
            SubscriptionOptIn.reporter_id == row.reporter_id,
            SubscriptionOptIn.template_key == row.template_key,
            SubscriptionOptIn.available > 0,
        )
        .values(available=SubscriptionOptIn.available - 1, updated_at=now),
        execution_options=_NO_SYNC,
    )
    return bool(taken.rowcount)  # type: ignore[attr-defined]


async def _close(session: AsyncSession, ids: list[uuid.UUID], status: OutboxStatus, reason: str) -> None:
    if ids:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(status=status, claimed_until=None, last_error=reason),
            execution_options=_NO_SYNC,
        )


# --- 2. send -------------------------------------------------------------------------------------------------


async def _send(context: AppContext, sender: WeChatMessageSender, claim: _Claim) -> SendResult:
    template_id = context.settings.wechat.templates.get(claim.template_key)
    if template_id is None:
        return SendResult(SendStatus.PERMANENT_FAILURE, detail=f"no template configured for {claim.template_key!r}")
    try:
        openid = context.cipher.decrypt(claim.openid_encrypted)
    except (KeyError, ValueError, InvalidTag):
        return SendResult(SendStatus.PERMANENT_FAILURE, detail="reporter openid could not be decrypted")
    deadline = send_deadline(context)
    if utcnow() + deadline > claim.lease_until:
        # Waited too long for a send slot: sending now could outlive the lease and race a reclaim.
        return SendResult(SendStatus.RETRY_LATER, detail="lease too short to send")
    try:
        async with asyncio.timeout(deadline.total_seconds()):
            return await sender.send(openid, template_id, claim.page, claim.values)
    except TimeoutError:
        return SendResult(SendStatus.RETRY_LATER, detail=f"send took over {deadline.total_seconds():.0f} s")
    except Exception as exc:
        # The sender answers for everything WeChat and the network do; this is a bug, and must not strand the
        # message in "sending" until its lease ends.
        log.exception("sending an outbox message failed unexpectedly")
        return SendResult(SendStatus.RETRY_LATER, detail=f"unexpected {type(exc).__name__}")


# --- 3. record -----------------------------------------------------------------------------------------------


async def _record(context: AppContext, ready: list[tuple[_Claim, SendResult]], result: DrainResult) -> None:
    """Record results in one transaction, retried a few times; if the database stays away, the leases of these
    messages bring them back (and those already delivered may be sent again: the documented window)."""
    for attempt in range(1, RECORD_TRIES + 1):
        try:
            async with unit_of_work(context.sessions) as session:
                statuses = [await _record_one(session, claim, outcome) for claim, outcome in ready]
        except DBAPIError:
            if attempt == RECORD_TRIES:
                log.exception("outbox results not recorded; their leases will bring them back")
                result.unrecorded += len(ready)
                return
            log.warning("recording outbox results failed; trying again", exc_info=True)
            await asyncio.sleep(2 ** (attempt - 1))
            continue
        for status in statuses:
            counter = _COUNTERS[status]
            setattr(result, counter, getattr(result, counter) + 1)
        return


_COUNTERS = {
    None: "lease_lost",
    OutboxStatus.SENT: "sent",
    OutboxStatus.REFUSED: "refused",
    OutboxStatus.PENDING: "retrying",
    OutboxStatus.FAILED: "failed",
}


async def _record_one(session: AsyncSession, claim: _Claim, outcome: SendResult) -> OutboxStatus | None:
    """Record one result; None when the message is no longer this worker's to record."""
    now = utcnow()
    error = (f"{outcome.errcode} " if outcome.errcode else "") + outcome.detail
    changes: dict[str, Any] = {"claimed_until": None, "last_error": error[:_LAST_ERROR_MAX] or None}
    opt_in: dict[str, Any] | None = None
    if outcome.status is SendStatus.SENT:
        status = OutboxStatus.SENT
        changes.update(sent_at=now, last_error=None)
    elif outcome.status is SendStatus.REFUSED_BY_USER:
        status, opt_in = OutboxStatus.REFUSED, {"available": 0}
    elif outcome.status is SendStatus.RETRY_LATER and claim.attempts < MAX_ATTEMPTS:
        status = OutboxStatus.PENDING
        changes["next_attempt_at"] = now + timedelta(seconds=backoff_seconds(claim.attempts))
    else:
        # Nothing was delivered, so the opt-in the message held is the user's again.
        status, opt_in = OutboxStatus.FAILED, {"available": SubscriptionOptIn.available + 1}
    recorded = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == claim.id,
            OutboxMessage.status == OutboxStatus.SENDING,
            OutboxMessage.attempts == claim.attempts,
        )
        .values(status=status, **changes),
        execution_options=_NO_SYNC,
    )
    if not recorded.rowcount:  # type: ignore[attr-defined]
        log.warning("outbox lease lost before the result was recorded", extra={"message_id": str(claim.id)})
        return None
    if opt_in is not None:
        await session.execute(
            update(SubscriptionOptIn)
            .where(
                SubscriptionOptIn.reporter_id == claim.reporter_id,
                SubscriptionOptIn.template_key == claim.template_key,
            )
            .values(updated_at=now, **opt_in),
            execution_options=_NO_SYNC,
        )
    return status
