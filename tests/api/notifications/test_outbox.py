"""Writing to the outbox and counting opt-ins happen inside the caller's transaction, and only there."""

from __future__ import annotations

import pytest

from app.core.context import AppContext
from app.core.db import unit_of_work
from app.notifications.outbox import OptInNotRequested, enqueue, record_opt_ins
from tests.api.notifications.outbox_data import PAGE, available, make_reporter, message_values, messages

pytestmark = pytest.mark.anyio


class CaseChangeFailed(Exception):
    pass


async def test_a_message_enqueued_in_a_transaction_that_rolls_back_is_gone_with_it(context: AppContext) -> None:
    reporter_id = await make_reporter(context, "oAlice0001")
    with pytest.raises(CaseChangeFailed):
        async with unit_of_work(context.sessions) as session:
            await enqueue(
                session,
                reporter_id=reporter_id,
                template_key="accepted",
                page=PAGE,
                values=message_values("M1"),
                dedupe_key="report-1:1",
            )
            raise CaseChangeFailed
    assert await messages(context) == {}


async def test_the_dedupe_key_makes_a_second_enqueue_a_no_op(context: AppContext) -> None:
    reporter_id = await make_reporter(context, "oAlice0001")
    for marker in ("FIRST", "SECOND"):  # in one transaction, and again in the next
        async with unit_of_work(context.sessions) as session:
            for _ in range(2):
                await enqueue(
                    session,
                    reporter_id=reporter_id,
                    template_key="accepted",
                    page=PAGE,
                    values=message_values(marker),
                    dedupe_key="report-1:1",
                )
    stored = await messages(context)
    assert list(stored) == ["FIRST"]
    message = stored["FIRST"]
    assert (message.status, message.attempts, message.dedupe_key) == ("pending", 0, "report-1:1")
    assert message.next_attempt_at.tzinfo is not None


async def test_opt_ins_are_counted_per_reporter_and_template(context: AppContext) -> None:
    alice = await make_reporter(context, "oAlice0001")
    bob = await make_reporter(context, "oBob000001")
    keys = ["accepted", "reward"]
    async with unit_of_work(context.sessions) as session:
        assert await record_opt_ins(session, alice, keys, ["accepted"]) == {"accepted": 1, "reward": 0}
        assert await record_opt_ins(session, alice, keys, ["accepted", "reward"]) == {"accepted": 2, "reward": 1}
        assert await record_opt_ins(session, alice, keys, []) == {"accepted": 2, "reward": 1}
        assert await record_opt_ins(session, bob, ["reward"], ["reward"]) == {"reward": 1}
    assert (await available(context, alice), await available(context, alice, "reward")) == (2, 1)
    assert (await available(context, bob), await available(context, bob, "reward")) == (0, 1)


async def test_an_opt_in_for_a_template_not_asked_about_is_refused(context: AppContext) -> None:
    alice = await make_reporter(context, "oAlice0001")
    with pytest.raises(OptInNotRequested) as refused:
        async with unit_of_work(context.sessions) as session:
            await record_opt_ins(session, alice, ["accepted"], ["accepted", "reward"])
    assert refused.value.details == {"keys": ["reward"]}
    assert await available(context, alice) == 0


async def test_opt_ins_roll_back_with_their_transaction(context: AppContext) -> None:
    alice = await make_reporter(context, "oAlice0001", opt_ins=1)
    with pytest.raises(CaseChangeFailed):
        async with unit_of_work(context.sessions) as session:
            await record_opt_ins(session, alice, ["accepted"], ["accepted"])
            raise CaseChangeFailed
    assert await available(context, alice) == 1
