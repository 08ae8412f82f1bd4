"""The outbox worker against a fake WeChat over real HTTP, on the test's database backend."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta

import pytest
from sqlalchemy import update

from app.core.config import Settings
from app.core.context import AppContext, build_context, close_context
from app.core.db import unit_of_work, utcnow
from app.identity.models import Reporter
from app.notifications import worker
from app.notifications.models import OutboxMessage
from app.notifications.wechat import SendResult, SendStatus
from app.notifications.worker import MAX_ATTEMPTS, drain_once, run_worker
from tests.api.notifications.outbox_data import (
    PAGE,
    TEMPLATES,
    available,
    delivered_markers,
    enqueue_messages,
    make_due,
    make_reporter,
    messages,
    statuses,
    wait_for,
    worker_environment,
)
from tests.support.fake_wechat_messages import FakeWeChatMessagesState

pytestmark = pytest.mark.anyio


async def test_due_messages_are_sent_once_and_marked_sent(context: AppContext, wechat: FakeWeChatMessagesState) -> None:
    alice = await make_reporter(context, "oAlice0001", opt_ins=3)
    await enqueue_messages(context, alice, ["A1", "A2"])

    drained = await drain_once(context)
    assert (drained.claimed, drained.sent) == (2, 2)
    assert delivered_markers(wechat.sent) == {"A1": 1, "A2": 1}
    body = wechat.sent[0]
    assert (body["touser"], body["template_id"], body["page"]) == ("oAlice0001", TEMPLATES["accepted"], PAGE)
    assert body["miniprogram_state"] == "formal"
    stored = await messages(context)
    assert {m.status for m in stored.values()} == {"sent"}
    assert all(m.sent_at is not None and m.claimed_until is None and m.attempts == 1 for m in stored.values())
    assert await available(context, alice) == 1  # one opt-in spent per message

    assert (await drain_once(context)).claimed == 0  # nothing is sent twice
    assert len(wechat.sent) == 2


async def test_a_message_not_yet_due_waits(context: AppContext, wechat: FakeWeChatMessagesState) -> None:
    alice = await make_reporter(context, "oAlice0001", opt_ins=1)
    await enqueue_messages(context, alice, ["LATER"])
    async with unit_of_work(context.sessions) as session:
        await session.execute(update(OutboxMessage).values(next_attempt_at=utcnow() + timedelta(minutes=1)))
    assert (await drain_once(context)).claimed == 0
    assert wechat.sent == [] and await available(context, alice) == 1


async def test_refused_by_the_user_is_final_and_zeroes_the_opt_ins(
    context: AppContext, wechat: FakeWeChatMessagesState
) -> None:
    refuser = await make_reporter(context, "o-refused-0001", opt_ins=3)
    await enqueue_messages(context, refuser, ["R1"])

    drained = await drain_once(context)
    assert (drained.claimed, drained.refused) == (1, 1)
    message = (await messages(context))["R1"]
    assert message.status == "refused" and message.last_error.startswith("43101")
    assert await available(context, refuser) == 0  # WeChat says there is no subscription left, whatever we counted
    await make_due(context)
    assert (await drain_once(context)).claimed == 0
    assert len(wechat.endpoint_calls("send")) == 1


async def test_wechat_busy_is_retried_after_a_backoff_keeping_the_opt_in(
    context: AppContext, wechat: FakeWeChatMessagesState
) -> None:
    busy = await make_reporter(context, "o-busy-0001", opt_ins=1)
    await enqueue_messages(context, busy, ["B1"])

    before = utcnow()
    drained = await drain_once(context)
    assert (drained.claimed, drained.retrying) == (1, 1)
    message = (await messages(context))["B1"]
    assert (message.status, message.attempts, message.claimed_until) == ("pending", 1, None)
    assert message.last_error.startswith("-1")
    # backoff_seconds(1) is 5 s ± 20 %.
    assert before + timedelta(seconds=3.9) <= message.next_attempt_at <= utcnow() + timedelta(seconds=6.1)
    # The opt-in stays with the message while it waits: a later message cannot take it.
    assert await available(context, busy) == 0
    assert (await drain_once(context)).claimed == 0  # not before the backoff has passed

    # WeChat recovers (the reporter's openid now answers normally) and the backoff passes.
    async with unit_of_work(context.sessions) as session:
        encrypted = context.cipher.encrypt("oRecovered01")
        await session.execute(update(Reporter).where(Reporter.id == busy).values(openid_encrypted=encrypted))
    await make_due(context)
    drained = await drain_once(context)
    assert (drained.claimed, drained.sent) == (1, 1)
    message = (await messages(context))["B1"]
    assert (message.status, message.attempts) == ("sent", 2)
    assert delivered_markers(wechat.sent) == {"B1": 1}
    assert await available(context, busy) == 0  # one opt-in for one delivery, however many tries


async def test_after_the_last_attempt_the_message_fails_and_the_opt_in_comes_back(
    context: AppContext, wechat: FakeWeChatMessagesState
) -> None:
    busy = await make_reporter(context, "o-busy-0001", opt_ins=1)
    await enqueue_messages(context, busy, ["B1"])
    for _ in range(MAX_ATTEMPTS):
        drained = await drain_once(context)
        assert drained.claimed == 1
        await make_due(context)
    assert (drained.retrying, drained.failed) == (0, 1)
    message = (await messages(context))["B1"]
    assert (message.status, message.attempts) == ("failed", MAX_ATTEMPTS)
    assert await available(context, busy) == 1  # never delivered: the user's opt-in is theirs again
    assert len(wechat.endpoint_calls("send")) == MAX_ATTEMPTS
    assert (await drain_once(context)).claimed == 0


async def test_without_an_opt_in_nothing_is_sent(context: AppContext, wechat: FakeWeChatMessagesState) -> None:
    never = await make_reporter(context, "oNever0001")
    once = await make_reporter(context, "oOnce00001", opt_ins=1)
    await enqueue_messages(context, never, ["N1"])
    await enqueue_messages(context, once, ["O1", "O2"])

    drained = await drain_once(context)
    assert (drained.claimed, drained.sent, drained.no_opt_in) == (1, 1, 2)
    stored = await messages(context)
    assert (stored["N1"].status, stored["O1"].status, stored["O2"].status) == ("no_opt_in", "sent", "no_opt_in")
    assert stored["N1"].attempts == 0
    assert delivered_markers(wechat.sent) == {"O1": 1}
    # An opt-in given later does not revive a message that was due before it.
    await make_reporter(context, "oNever0001", opt_ins=1)
    await make_due(context)
    assert (await drain_once(context)).claimed == 0
    assert await available(context, never) == 1


async def test_a_message_wechat_refuses_fails_at_once_and_gives_the_opt_in_back(
    context: AppContext, wechat: FakeWeChatMessagesState
) -> None:
    alice = await make_reporter(context, "oAlice0001", opt_ins=2)
    await make_reporter(context, "oAlice0001", opt_ins=1, template_key="not-configured")
    await enqueue_messages(context, alice, ["BAD-TEMPLATE"], template_key="not-configured")
    await enqueue_messages(context, alice, ["BAD-VALUE"])
    async with unit_of_work(context.sessions) as session:
        bad = {"character_string1": "BAD-VALUE", "time4": "25:99"}
        await session.execute(update(OutboxMessage).where(OutboxMessage.template_key == "accepted").values(values=bad))

    drained = await drain_once(context)
    assert (drained.claimed, drained.failed) == (2, 2)
    stored = await messages(context)
    assert stored["BAD-TEMPLATE"].status == "failed" and "not-configured" in stored["BAD-TEMPLATE"].last_error
    assert stored["BAD-VALUE"].status == "failed" and "time4" in stored["BAD-VALUE"].last_error
    assert wechat.sent == []
    assert await available(context, alice) == 2
    assert await available(context, alice, "not-configured") == 1


async def test_a_message_whose_worker_died_is_taken_over_when_the_lease_ends(
    context: AppContext, wechat: FakeWeChatMessagesState
) -> None:
    alice = await make_reporter(context, "oAlice0001", opt_ins=1)
    await enqueue_messages(context, alice, ["CRASH"])
    # A worker claims the message (spending the opt-in) and dies before sending.
    [dead_workers_claim] = await worker._claim(context, worker.DrainResult())
    assert await available(context, alice) == 0

    assert (await drain_once(context)).claimed == 0  # its lease still runs
    async with unit_of_work(context.sessions) as session:
        await session.execute(update(OutboxMessage).values(claimed_until=utcnow() - timedelta(seconds=1)))
    drained = await drain_once(context)
    assert (drained.claimed, drained.sent, drained.no_opt_in) == (1, 1, 0)  # its opt-in is still its own
    message = (await messages(context))["CRASH"]
    assert (message.status, message.attempts) == ("sent", 2)
    assert delivered_markers(wechat.sent) == {"CRASH": 1}

    # Had the first worker only been paused, its late record would not overwrite the new one.
    late = worker.DrainResult()
    await worker._record(context, [(dead_workers_claim, SendResult(SendStatus.RETRY_LATER, -1, "busy"))], late)
    assert late.lease_lost == 1
    assert (await messages(context))["CRASH"].status == "sent"


async def test_several_workers_at_once_send_each_message_exactly_once(
    outbox_settings: Settings, context: AppContext, wechat: FakeWeChatMessagesState
) -> None:
    """In one process, but each worker with its own engine and connections, as separate processes would."""
    reporters = [await make_reporter(context, f"oPerson{n:04d}", opt_ins=5) for n in range(20)]
    for n, reporter in enumerate(reporters):
        await enqueue_messages(context, reporter, [f"P{n:02d}-{k}" for k in range(5)])
    workers = [build_context(outbox_settings) for _ in range(4)]
    try:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(run_worker(each, stop=stop)) for each in workers]
        await wait_for(context, "sent", 100)
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        for each in workers:
            await close_context(each)
    assert await statuses(context) == {"sent": 100}
    delivered = delivered_markers(wechat.sent)
    assert len(delivered) == 100 and set(delivered.values()) == {1}
    assert [await available(context, reporter) for reporter in reporters] == [0] * 20


async def test_the_worker_command_finishes_its_sends_on_sigterm_and_stops(
    outbox_settings: Settings, context: AppContext, wechat: FakeWeChatMessagesState
) -> None:
    wechat.slow_seconds = 0.3  # so that SIGTERM comes with sends in flight
    slow = await make_reporter(context, "o-slow-0001", opt_ins=60)
    await enqueue_messages(context, slow, [f"C{n:02d}" for n in range(60)])
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "worker",
        env={**os.environ, **worker_environment(outbox_settings)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_for(context, "sent", 1)
        process.send_signal(signal.SIGTERM)
        _, errors = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, errors.decode()
    tally = await statuses(context)
    # Every message it had claimed was sent and recorded before it stopped; the rest wait for the next worker.
    assert set(tally) == {"sent", "pending"} and tally["sent"] >= outbox_settings.worker_batch_size, tally
    assert set(delivered_markers(wechat.sent).values()) == {1}
    assert len(wechat.sent) == tally["sent"]
