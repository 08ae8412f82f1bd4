"""The WeChat subscription-message sender: pure template rules, then real HTTP against a local fake of WeChat."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest

from app.core.config import WeChatSettings
from app.notifications.wechat import (
    BACKOFF_CAP_SECONDS,
    SendResult,
    SendStatus,
    TemplateValueInvalid,
    WeChatMessageSender,
    backoff_seconds,
    classify_errcode,
    mask_openid,
    redact,
    template_data,
    truncate,
    wechat_length,
)
from tests.support.fake_wechat_messages import FakeWeChatMessagesState, fake_wechat_messages_app, invalid_data_key
from tests.support.servers import free_port, serve_in_thread

pytestmark = pytest.mark.anyio

APP_ID = "wx-test-messages"
APP_SECRET = "APP-SECRET-do-not-log-7f3a9c"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
TEMPLATE = "tmpl-status"
PAGE = "pages/report/detail?id=42"
VALUES = {
    "character_string1": "441881-20261122-0001",
    "thing2": "道路积水",
    "phrase3": "已受理",
    "time4": "2026-11-22 09:30",
}

FAMILY = "👨\u200d👩\u200d👧"  # one ZWJ sequence: 3 emoji (2 units each) + 2 joiners = 8 UTF-16 units
FLAG = "🇨🇳"  # two regional indicators = 4 units
THUMB = "👍🏽"  # emoji + skin tone = 4 units


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- template_data: pure -------------------------------------------------------------------------------------


def test_wechat_length_counts_utf16_units_not_bytes() -> None:
    assert wechat_length("安全隐患") == 4  # 12 bytes in UTF-8, 4 characters for WeChat
    assert wechat_length("A1-_") == 4
    assert wechat_length("😀") == 2
    assert wechat_length(FAMILY) == 8
    assert wechat_length(FLAG) == 4


def test_thing_of_20_characters_is_kept_and_21_are_cut_with_an_ellipsis() -> None:
    twenty = "一二三四五六七八九十" * 2
    assert template_data({"thing1": twenty}) == {"thing1": {"value": twenty}}
    cut = template_data({"thing1": twenty + "多"})["thing1"]["value"]
    assert cut == twenty[:19] + "…"
    assert wechat_length(cut) == 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("隐患" * 9 + "😀😀", "隐患" * 9 + "…"),  # 18 + 2 would be 20 but "…" needs 1: the emoji goes whole
        ("隐患" * 8 + "😀😀😀", "隐患" * 8 + "😀…"),  # 16 + 2 + 1
        ("隐患" * 7 + FAMILY, "隐患" * 7 + "…"),  # never a partial family
        ("隐患" * 5 + FAMILY + "尾巴巴", "隐患" * 5 + FAMILY + "尾…"),  # 10 + 8 + 1 + 1
        ("隐患" * 8 + FLAG + "x", "隐患" * 8 + "…"),  # never half a flag
        ("隐患" * 7 + THUMB + "xyz", "隐患" * 7 + THUMB + "x…"),  # 14 + 4 + 1 + 1
        ("隐患" * 8 + "a" + THUMB, "隐患" * 8 + "a…"),  # 👍 would fit, its skin tone not: both go
        ("隐患" * 9 + "e\u0301e\u0301", "隐患" * 9 + "…"),  # an accent stays with its letter
    ],
)
def test_thing_truncation_never_splits_an_emoji_or_a_character_cluster(text: str, expected: str) -> None:
    value = template_data({"thing1": text})["thing1"]["value"]
    assert value == expected
    assert wechat_length(value) <= 20
    # No dangling joiner, lone surrogate or lone regional indicator.
    assert "\u200d…" not in value
    value.encode("utf-8")


def test_truncate_drops_trailing_space_before_the_ellipsis() -> None:
    assert truncate("一二三四五六七八 九十一二三四五六七八九十", 10) == "一二三四五六七八…"


def test_text_is_put_on_one_line() -> None:
    assert template_data({"thing1": "  路灯\r\n不亮\t了  "}) == {"thing1": {"value": "路灯 不亮 了"}}


def test_character_string_is_cut_with_an_ascii_ellipsis_and_refuses_hanzi() -> None:
    long = "REPORT-" + "0123456789" * 4
    value = template_data({"character_string7": long})["character_string7"]["value"]
    assert value == long[:29] + "..."
    assert len(value) == 32
    assert template_data({"character_string1": "441881-20261122-0001"})["character_string1"]["value"] == (
        "441881-20261122-0001"
    )
    with pytest.raises(TemplateValueInvalid) as caught:
        template_data({"character_string1": "编号123"})
    assert caught.value.field == "character_string1"


def test_phrase_keeps_five_hanzi_and_refuses_anything_else() -> None:
    assert template_data({"phrase1": "处理中"})["phrase1"]["value"] == "处理中"
    assert template_data({"phrase1": "正在核查处理中"})["phrase1"]["value"] == "正在核查处"
    for bad in ["OK", "处理中!", "处理😀"]:
        with pytest.raises(TemplateValueInvalid):
            template_data({"phrase1": bad})


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        ("number", ["42", "3.14", "9" * 32], ["9" * 33, "12a", "-", "1.2.3"]),
        (
            "time",
            ["2026-11-22 09:30", "09:30", "2026年11月22日 09:30", "2026-11-22 09:30:15", "09:00~17:30"],
            ["2026-11-22", "2026-13-22 09:30", "2026-02-30 09:30", "24:00", "9.30", "明天 09:30", "1~2~3"],
        ),
        (
            "date",
            ["2026-11-22", "2026年11月22日", "2026-11-22 09:30", "2026-11-22~2026-11-25"],
            ["2026/11/22", "22-11-2026", "2026-11-31", "09:30"],
        ),
        ("amount", ["¥300.00", "¥300", "￥1234567890", "$5.5", "¥300.00元"], ["300.00", "¥12345678901", "¥3.005"]),
        ("phone_number", ["+86-0766-66888866", "12345", "(0766)6688"], ["+86-0766-66888866-1", "call me"]),
    ],
)
def test_formatted_fields_are_validated(key: str, good: list[str], bad: list[str]) -> None:
    for value in good:
        assert template_data({f"{key}5": value}) == {f"{key}5": {"value": value}}, value
    for value in bad:
        with pytest.raises(TemplateValueInvalid) as caught:
            template_data({f"{key}5": value})
        assert caught.value.field == f"{key}5"
        # The value (possibly personal) is not in the error, only the key and a fixed description of the rule.
        assert value not in str(caught.value)
        assert set(caught.value.details) == {"rule"}


def test_other_wechat_types() -> None:
    assert template_data({"name1": "张三"})["name1"]["value"] == "张三"
    assert template_data({"name1": "欧阳" * 6})["name1"]["value"] == "欧阳" * 5
    assert template_data({"car_number2": "粤a8z888"})["car_number2"]["value"] == "粤A8Z888"
    assert template_data({"letter3": "ABC"})["letter3"]["value"] == "ABC"
    with pytest.raises(TemplateValueInvalid):
        template_data({"car_number2": "粤A8Z888888"})


@pytest.mark.parametrize("values", [{}, {"site1": "x"}, {"thing": "x"}, {"thing1": "   "}, {"thing1": 3}])
def test_unknown_keys_empty_and_non_text_values_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(TemplateValueInvalid):
        template_data(values)  # type: ignore[arg-type]


def test_template_value_error_is_a_domain_error() -> None:
    with pytest.raises(TemplateValueInvalid) as caught:
        template_data({"time1": "soon"})
    assert caught.value.status == 422
    assert caught.value.body()["error"]["field"] == "time1"


def test_the_fake_agrees_with_our_rules() -> None:
    data = template_data({"thing1": "隐患" * 20 + FAMILY, "character_string2": "X" * 50, "phrase3": "处理中处理中"})
    assert invalid_data_key(data) is None
    assert invalid_data_key({"thing1": {"value": "隐患" * 9 + "😀😀"}}) == "thing1"


# --- backoff, classification, masking ------------------------------------------------------------------------


def test_backoff_doubles_from_5_seconds_up_to_15_minutes() -> None:
    middle = [backoff_seconds(n, rng=lambda: 0.5) for n in range(1, 11)]
    assert middle == [5, 10, 20, 40, 80, 160, 320, 640, 900, 900]
    assert backoff_seconds(10_000, rng=lambda: 0.5) == BACKOFF_CAP_SECONDS


def test_backoff_jitter_spreads_20_percent_and_never_exceeds_the_cap() -> None:
    assert backoff_seconds(3, rng=lambda: 0.0) == pytest.approx(16.0)
    assert backoff_seconds(3, rng=lambda: 0.999999) == pytest.approx(24.0, rel=1e-5)
    assert backoff_seconds(12, rng=lambda: 0.999999) == BACKOFF_CAP_SECONDS
    assert backoff_seconds(12, rng=lambda: 0.0) == pytest.approx(0.8 * BACKOFF_CAP_SECONDS)
    with pytest.raises(ValueError):
        backoff_seconds(0)


@pytest.mark.parametrize(
    ("errcode", "status"),
    [
        (0, SendStatus.SENT),
        (43101, SendStatus.REFUSED_BY_USER),
        (47003, SendStatus.PERMANENT_FAILURE),
        (40037, SendStatus.PERMANENT_FAILURE),
        (41030, SendStatus.PERMANENT_FAILURE),
        (40003, SendStatus.PERMANENT_FAILURE),
        (12345, SendStatus.PERMANENT_FAILURE),
        (-1, SendStatus.RETRY_LATER),
        (45009, SendStatus.RETRY_LATER),
    ],
)
def test_errcode_classification(errcode: int, status: SendStatus) -> None:
    assert classify_errcode(errcode) is status


def test_openid_mask_and_query_redaction() -> None:
    assert mask_openid(OPENID) == "oUpF…eS6o"
    assert mask_openid("short") == "***"
    assert redact("GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=abc") == (
        "GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=***"
    )
    assert redact("POST /send?access_token=T0K3N") == "POST /send?access_token=***"


# --- over HTTP against the fake ------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def fake_server() -> Iterator[tuple[str, FakeWeChatMessagesState]]:
    app = fake_wechat_messages_app(APP_ID, APP_SECRET)
    with serve_in_thread(app) as url:
        yield url, app.state.fake


@pytest.fixture
def fake(fake_server: tuple[str, FakeWeChatMessagesState]) -> FakeWeChatMessagesState:
    fake_server[1].reset()
    return fake_server[1]


@pytest.fixture
def settings(fake_server: tuple[str, FakeWeChatMessagesState]) -> WeChatSettings:
    return WeChatSettings(api_base=fake_server[0], app_id=APP_ID, app_secret=APP_SECRET, timeout_seconds=2.0)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sender(settings: WeChatSettings, http: httpx.AsyncClient, clock: FakeClock) -> WeChatMessageSender:
    return WeChatMessageSender(settings, http, clock=clock)


async def send(sender: WeChatMessageSender, openid: str = OPENID, **overrides: str) -> SendResult:
    values = {**VALUES, **overrides}
    return await sender.send(openid, TEMPLATE, PAGE, values)


async def send_many(sender: WeChatMessageSender, count: int) -> list[SendResult]:
    results: list[SendResult] = []

    async def one(n: int) -> None:
        results.append(await sender.send(f"oUser{n:04d}xyz", TEMPLATE, PAGE, VALUES))

    async with anyio.create_task_group() as group:
        for n in range(count):
            group.start_soon(one, n)
    return results


async def test_token_is_fetched_once_for_many_sends(sender: WeChatMessageSender, fake: FakeWeChatMessagesState) -> None:
    results = [await send(sender) for _ in range(10)]
    assert all(r.status is SendStatus.SENT and r.errcode == 0 for r in results)
    assert [r.msgid for r in results] == list(range(1, 11))
    assert len(fake.endpoint_calls("token")) == 1
    assert fake.endpoint_calls("token")[0] == {"endpoint": "token", "appid": APP_ID, "grant_type": "client_credential"}
    body = fake.sent[0]
    assert body == {
        "touser": OPENID,
        "template_id": TEMPLATE,
        "page": PAGE,
        "data": {key: {"value": value} for key, value in VALUES.items()},
        "miniprogram_state": "formal",
        "lang": "zh_CN",
    }


async def test_miniprogram_state_can_be_chosen(
    http: httpx.AsyncClient, fake: FakeWeChatMessagesState, settings: WeChatSettings
) -> None:
    sender = WeChatMessageSender(settings, http, miniprogram_state="trial")
    assert (await sender.send(OPENID, TEMPLATE, "", VALUES)).status is SendStatus.SENT
    assert fake.sent[0]["miniprogram_state"] == "trial"
    assert "page" not in fake.sent[0]  # no page: the card opens nothing


async def test_token_is_refreshed_shortly_before_it_expires(
    sender: WeChatMessageSender, fake: FakeWeChatMessagesState, clock: FakeClock
) -> None:
    await send(sender)
    clock.now += 7200 - 300 - 1
    await send(sender)
    assert len(fake.endpoint_calls("token")) == 1
    clock.now += 2
    assert (await send(sender)).status is SendStatus.SENT
    assert len(fake.endpoint_calls("token")) == 2
    sends = fake.endpoint_calls("send")
    assert sends[-1]["access_token"] == fake.issued_tokens[1] != sends[0]["access_token"]


async def test_token_invalidated_by_wechat_is_refreshed_and_the_send_retried_once(
    sender: WeChatMessageSender, fake: FakeWeChatMessagesState
) -> None:
    await send(sender)
    fake.expire_tokens()
    fake.calls.clear()
    result = await send(sender)
    assert result.status is SendStatus.SENT
    assert [c["endpoint"] for c in fake.calls] == ["send", "token", "send"]
    assert fake.calls[0]["access_token"] == fake.issued_tokens[0]
    assert fake.calls[2]["access_token"] == fake.issued_tokens[1]


async def test_a_token_rejected_twice_is_retry_later_without_looping(
    sender: WeChatMessageSender, fake: FakeWeChatMessagesState
) -> None:
    fake.reject_all_tokens = True
    result = await send(sender)
    assert result.status is SendStatus.RETRY_LATER and result.errcode == 40001
    assert [c["endpoint"] for c in fake.calls] == ["token", "send", "token", "send"]


async def test_user_refusal_is_not_retried(sender: WeChatMessageSender, fake: FakeWeChatMessagesState) -> None:
    result = await send(sender, "o-refused-alice")
    assert result == SendResult(SendStatus.REFUSED_BY_USER, 43101, "user refuse to accept the msg")
    assert not result.retryable
    assert len(fake.endpoint_calls("send")) == 1


@pytest.mark.parametrize(("openid", "errcode"), [("o-busy-bob", -1), ("o-quota-carol", 45009)])
async def test_busy_and_quota_are_retry_later(
    sender: WeChatMessageSender, fake: FakeWeChatMessagesState, openid: str, errcode: int
) -> None:
    result = await send(sender, openid)
    assert result.status is SendStatus.RETRY_LATER and result.errcode == errcode and result.retryable
    assert len(fake.endpoint_calls("send")) == 1


@pytest.mark.parametrize(
    ("template_id", "page", "openid", "errcode"),
    [
        ("tmpl-unknown", PAGE, OPENID, 40037),
        (TEMPLATE, "pages/nowhere", OPENID, 41030),
        (TEMPLATE, PAGE, "not an openid", 40003),
    ],
)
async def test_refused_messages_are_permanent_failures(
    sender: WeChatMessageSender,
    fake: FakeWeChatMessagesState,
    template_id: str,
    page: str,
    openid: str,
    errcode: int,
) -> None:
    result = await sender.send(openid, template_id, page, VALUES)
    assert result.status is SendStatus.PERMANENT_FAILURE and result.errcode == errcode
    assert len(fake.endpoint_calls("send")) == 1


async def test_http_500_is_retry_later(sender: WeChatMessageSender, fake: FakeWeChatMessagesState) -> None:
    result = await send(sender, "o-http500-dave")
    assert result == SendResult(SendStatus.RETRY_LATER, None, "http 500")


async def test_closed_port_is_retry_later_within_the_timeout(http: httpx.AsyncClient) -> None:
    settings = WeChatSettings(
        api_base=f"http://127.0.0.1:{free_port()}", app_id=APP_ID, app_secret=APP_SECRET, timeout_seconds=1.0
    )
    sender = WeChatMessageSender(settings, http)
    started = time.monotonic()
    result = await send(sender)
    assert time.monotonic() - started < 1.5
    assert result.status is SendStatus.RETRY_LATER
    assert result.detail == "access token: ConnectError"


async def test_slow_answer_times_out_as_retry_later(
    http: httpx.AsyncClient, fake: FakeWeChatMessagesState, settings: WeChatSettings
) -> None:
    sender = WeChatMessageSender(settings.model_copy(update={"timeout_seconds": 0.3}), http)
    fake.slow_seconds = 1.0
    started = time.monotonic()
    result = await send(sender, "o-slow-erin")
    assert time.monotonic() - started < 0.9
    assert result == SendResult(SendStatus.RETRY_LATER, None, "ReadTimeout")


async def test_long_values_are_cut_to_what_wechat_accepts(
    sender: WeChatMessageSender, fake: FakeWeChatMessagesState, http: httpx.AsyncClient, settings: WeChatSettings
) -> None:
    values = {
        "character_string1": "441881-20261122-" + "0" * 30,
        "thing2": "人行道井盖缺失，夜间行人极易跌落受伤，请尽快修复" + FAMILY,
        "thing3": "😀" * 15,
        "phrase4": "正在核查处理中",
        "amount5": "¥300.00",
    }
    # The fake is strict: the same values unshortened are refused with 47003.
    token = fake.issue_token()
    raw = {key: {"value": value} for key, value in values.items()}
    response = await http.post(
        f"{settings.api_base}/cgi-bin/message/subscribe/send",
        params={"access_token": token},
        json={"touser": OPENID, "template_id": TEMPLATE, "data": raw},
    )
    assert response.json()["errcode"] == 47003

    result = await sender.send(OPENID, TEMPLATE, PAGE, values)
    assert result.status is SendStatus.SENT, result
    data = fake.sent[-1]["data"]
    assert data["character_string1"]["value"] == "441881-20261122-0000000000000..."
    assert data["thing2"]["value"] == "人行道井盖缺失，夜间行人极易跌落受伤，…"
    assert data["thing3"]["value"] == "😀" * 9 + "…"
    assert data["phrase4"]["value"] == "正在核查处"


async def test_values_no_shortening_can_save_fail_before_calling_wechat(
    sender: WeChatMessageSender, fake: FakeWeChatMessagesState
) -> None:
    result = await send(sender, time4="next tuesday")
    assert result.status is SendStatus.PERMANENT_FAILURE and result.errcode is None
    assert "time4" in result.detail and "next tuesday" not in result.detail
    assert fake.calls == []


async def test_concurrent_first_sends_fetch_one_token(
    sender: WeChatMessageSender, fake: FakeWeChatMessagesState
) -> None:
    results = await send_many(sender, 20)
    assert [r.status for r in results] == [SendStatus.SENT] * 20
    assert len(fake.endpoint_calls("token")) == 1


async def test_concurrent_sends_with_a_token_past_its_time_fetch_one_token(
    sender: WeChatMessageSender, fake: FakeWeChatMessagesState, clock: FakeClock
) -> None:
    await send(sender)
    clock.now += 7200
    results = await send_many(sender, 20)
    assert [r.status for r in results] == [SendStatus.SENT] * 20
    assert len(fake.endpoint_calls("token")) == 2
    assert len(fake.endpoint_calls("send")) == 21


async def test_concurrent_sends_with_a_token_wechat_expired_refresh_once(
    sender: WeChatMessageSender, fake: FakeWeChatMessagesState
) -> None:
    await send(sender)
    fake.expire_tokens()
    fake.token_delay = 0.2  # every send gets its 40001 while the one refresh is still under way
    results = await send_many(sender, 20)
    assert [r.status for r in results] == [SendStatus.SENT] * 20
    assert len(fake.endpoint_calls("token")) == 2
    # 1 + 20 refused with the old token + 20 retried with the new one.
    sends = fake.endpoint_calls("send")
    assert len(sends) == 41
    assert {c["access_token"] for c in sends[21:]} == {fake.issued_tokens[1]}


async def test_a_failed_token_fetch_is_not_repeated_by_every_waiting_send(
    sender: WeChatMessageSender, fake: FakeWeChatMessagesState, clock: FakeClock
) -> None:
    fake.token_errcode = -1
    results = await send_many(sender, 20)
    assert {(r.status, r.errcode) for r in results} == {(SendStatus.RETRY_LATER, -1)}
    assert len(fake.endpoint_calls("token")) == 1
    assert fake.endpoint_calls("send") == []
    fake.token_errcode = None
    assert (await send(sender)).status is SendStatus.RETRY_LATER  # still within the pause
    clock.now += 11
    assert (await send(sender)).status is SendStatus.SENT
    assert len(fake.endpoint_calls("token")) == 2


async def test_wrong_app_secret_is_retry_later_and_logged_as_an_error(
    http: httpx.AsyncClient, fake: FakeWeChatMessagesState, settings: WeChatSettings, caplog: pytest.LogCaptureFixture
) -> None:
    sender = WeChatMessageSender(settings.model_copy(update={"app_secret": "wrong"}), http)
    with caplog.at_level(logging.WARNING, logger="app.notifications.wechat"):
        result = await send(sender)
    assert result.status is SendStatus.RETRY_LATER and result.errcode == 40125
    assert any(r.levelno == logging.ERROR and getattr(r, "errcode", None) == 40125 for r in caplog.records)


async def test_secrets_never_reach_the_logs(
    sender: WeChatMessageSender, fake: FakeWeChatMessagesState, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await send(sender)
    fake.expire_tokens()
    await send(sender)  # 40001, refresh, retry
    await send(sender, "o-refused-frank")
    await send(sender, "o-http500-grace")
    await send(sender, thing2="路灯不亮" * 10)
    await send(sender, time4="not a time")
    assert len(fake.issued_tokens) == 2

    everything = caplog.text + "\n".join(repr(vars(record)) for record in caplog.records)
    for secret in [*fake.issued_tokens, APP_SECRET, OPENID, "o-refused-frank", "路灯不亮"]:
        assert secret not in everything
    # The logs did talk about these sends: masked openids, httpx's request lines with the token masked.
    assert mask_openid(OPENID) in everything
    assert "access_token=***" in caplog.text and "secret=***" in caplog.text
    outcomes = {getattr(r, "outcome", None) for r in caplog.records if r.name == "app.notifications.wechat"}
    assert {"sent", "refused_by_user", "retry_later", "permanent_failure"} <= outcomes
