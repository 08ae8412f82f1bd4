"""WeChat subscription messages (订阅消息): the access token, the template value rules and the send call.

``WeChatMessageSender.send`` answers a :class:`SendResult` and never raises for anything WeChat or the network
does; the caller (the notification outbox) acts on ``result.status``:

* ``SENT`` - delivered; the opt-in is spent.
* ``REFUSED_BY_USER`` - errcode 43101, the user refused or has no subscription left: never retry, mark the opt-in
  used/declined.
* ``PERMANENT_FAILURE`` - WeChat refused the message itself (47003 bad values, 40037 bad template id, 41030 bad
  page, 40003 bad openid, any errcode we do not know) or our own template rules refused a value before sending:
  never retry, record it.
* ``RETRY_LATER`` - system busy (-1), quotas (45009, 45011), HTTP 5xx or an unexpected answer, timeouts, connection
  errors, no access token to be had: retry after :func:`backoff_seconds`.

Access token, and what we rely on with several processes
--------------------------------------------------------
The sender keeps one access token per process from ``GET /cgi-bin/token``, reused until 5 minutes before
``expires_in`` runs out. Only one coroutine fetches at a time (an ``asyncio.Lock``); the others wait and then
use what it fetched, so many concurrent sends cause one token request. A token WeChat answers 40001, 42001 or
40014 for is dropped, a new one fetched (unless another send has already replaced it) and the send retried once.

Every call to ``/cgi-bin/token`` invalidates the token issued before it, but WeChat keeps the previous token
usable for 5 minutes after a new one is issued. With several processes (API workers, the outbox worker) each
fetches its own token, and we rely on two things: (1) a send in flight with the previous token still succeeds
during those 5 minutes, and (2) after them the other process gets 40001, refreshes and retries once (the
refresh-on-invalid above), so a message is never lost to a token race - at worst it costs one extra token
request and round trip. What we do not get is economy: processes take turns invalidating each other's tokens, and
``/cgi-bin/token`` has a small daily quota (2000 calls a day at the time of writing). That is fine for the few
processes of one county deployment; with more, move the token to one holder (a shared cache filled by one process)
or to ``POST /cgi-bin/stable_token`` (getStableAccessToken, which hands every caller the same token), keeping
this class's refresh-on-40001 as the fallback.

Secrets: the access token and the app secret travel in query strings, which httpx logs at INFO level; the sender
installs a filter on the ``httpx`` logger that masks them (:func:`install_log_redaction`). Openids are logged
masked (:func:`mask_openid`) and template values are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Literal

import httpx

from app.core.config import WeChatSettings
from app.core.errors import InvalidInput

log = logging.getLogger(__name__)

MiniprogramState = Literal["developer", "trial", "formal"]

# errcodes of the send call, by what the caller should do about them.
REFUSED_ERRCODES = frozenset({43101})
# -1 system busy, 45009 daily quota reached, 45011 calls too frequent: all pass with time.
RETRY_ERRCODES = frozenset({-1, 45009, 45011})
# invalid credential / access token expired / invalid token: refresh the token and retry once.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# Token endpoint errcodes that mean our configuration is wrong (appid, secret, IP whitelist), not WeChat busy.
TOKEN_CONFIG_ERRCODES = frozenset({40001, 40002, 40013, 40125, 40164, 41002, 41004, 89503})

TOKEN_REFRESH_MARGIN_SECONDS = 300.0
DEFAULT_TOKEN_LIFETIME_SECONDS = 7200.0
# After a failed token fetch, sends fail fast (RETRY_LATER) for this long instead of each asking WeChat again.
TOKEN_FAILURE_PAUSE_SECONDS = 10.0

BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 15 * 60.0
BACKOFF_JITTER = 0.2

_DETAIL_MAX = 200


# --- results -------------------------------------------------------------------------------------------------


class SendStatus(StrEnum):
    SENT = "sent"
    REFUSED_BY_USER = "refused_by_user"
    PERMANENT_FAILURE = "permanent_failure"
    RETRY_LATER = "retry_later"


@dataclass(frozen=True, slots=True)
class SendResult:
    status: SendStatus
    # WeChat's errcode when it answered one (0 when sent).
    errcode: int | None = None
    # A short reason for the record: WeChat's errmsg, "http 503", "ReadTimeout", the refused template key...
    # Never contains the openid, the access token or a template value.
    detail: str = ""
    msgid: int | None = None

    @property
    def retryable(self) -> bool:
        return self.status is SendStatus.RETRY_LATER


def classify_errcode(errcode: int) -> SendStatus:
    """What a send errcode means for the caller (token errcodes are handled inside the sender first)."""
    if errcode == 0:
        return SendStatus.SENT
    if errcode in REFUSED_ERRCODES:
        return SendStatus.REFUSED_BY_USER
    if errcode in RETRY_ERRCODES or errcode in TOKEN_ERRCODES:
        return SendStatus.RETRY_LATER
    return SendStatus.PERMANENT_FAILURE


def backoff_seconds(attempt: int, *, rng: Callable[[], float] = random.random) -> float:
    """Delay before retry number ``attempt`` (1 = the first retry): 5 s, 10 s, 20 s ... doubling up to 15 min,
    each spread by ±20 % (``rng`` answers in [0, 1)) so retries of a burst do not hit WeChat together, and never
    more than 15 min."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    nominal = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** min(attempt - 1, 30))
    factor = 1.0 - BACKOFF_JITTER + 2.0 * BACKOFF_JITTER * rng()
    return min(BACKOFF_CAP_SECONDS, nominal * factor)


# --- template values -----------------------------------------------------------------------------------------


class TemplateValueInvalid(InvalidInput):
    """A template value WeChat would refuse and that cannot be shortened into one it accepts."""

    code = "wechat_template_value_invalid"
    message = "订阅消息模板字段不合法"


ELLIPSIS = "…"
_ZWJ = "\u200d"
_KEY = re.compile(r"([a-z]+(?:_[a-z]+)*)(\d+)")
_SPACES = re.compile(r"\s+")
_CHARACTER_STRING = re.compile(r"[!-~]+")  # printable ASCII without space: letters, digits, symbols
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_LETTERS = re.compile(r"[A-Za-z]+")
_PHONE = re.compile(r"[0-9+\-()#*]*[0-9][0-9+\-()#*]*")
_AMOUNT = re.compile(r"[¥￥$€£](\d+)(?:\.(\d{1,2}))?元?")
_DATE_PART = r"(\d{4})(?:-(\d{1,2})-(\d{1,2})|年(\d{1,2})月(\d{1,2})日)"
_CLOCK_PART = r"(\d{1,2}):(\d{2})(?::(\d{2}))?"
_TIME_POINT = re.compile(rf"(?:{_DATE_PART} )?{_CLOCK_PART}")
_DATE_POINT = re.compile(rf"{_DATE_PART}(?: {_CLOCK_PART})?")


def wechat_length(text: str) -> int:
    """Characters as WeChat's limits count them, taken conservatively: UTF-16 code units, as JavaScript's
    ``length`` does. 汉字, letters, digits and symbols count 1 each (no byte counting); an emoji outside the BMP
    counts 2 and a ZWJ emoji sequence counts all its parts. WeChat does not document how it counts emoji, so this
    errs on the side of a shorter text WeChat surely accepts."""
    return len(text.encode("utf-16-le")) // 2


def _is_extender(ch: str) -> bool:
    """Characters that belong to the character before them on screen (combining marks, variation selectors,
    emoji skin tones, tag characters, ZWJ)."""
    return (
        ch == _ZWJ
        or unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or "\ufe00" <= ch <= "\ufe0f"
        or "\U0001f3fb" <= ch <= "\U0001f3ff"
        or "\U000e0020" <= ch <= "\U000e007f"
    )


def _is_regional_indicator(ch: str) -> bool:
    return "\U0001f1e6" <= ch <= "\U0001f1ff"


def _clusters(text: str) -> list[str]:
    """Approximate user-perceived characters (grapheme clusters), enough that truncation never cuts an emoji,
    a flag, a ZWJ family or a base from its accent in half."""
    clusters: list[str] = []
    open_flag = False
    for ch in text:
        if clusters and (_is_extender(ch) or clusters[-1].endswith(_ZWJ) or (open_flag and _is_regional_indicator(ch))):
            clusters[-1] += ch
            if _is_regional_indicator(ch):
                open_flag = False
            continue
        clusters.append(ch)
        open_flag = _is_regional_indicator(ch)
    return clusters


def truncate(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """``text`` if it fits in ``limit`` (by :func:`wechat_length`), else whole characters from its start and
    ``ellipsis``, together at most ``limit``."""
    if wechat_length(text) <= limit:
        return text
    room = limit - wechat_length(ellipsis)
    kept: list[str] = []
    used = 0
    for cluster in _clusters(text):
        size = wechat_length(cluster)
        if used + size > room:
            break
        kept.append(cluster)
        used += size
    return "".join(kept).rstrip() + ellipsis


def _is_hanzi(ch: str) -> bool:
    return (
        "\u4e00" <= ch <= "\u9fff"
        or "\u3400" <= ch <= "\u4dbf"
        or "\uf900" <= ch <= "\ufaff"
        or "\U00020000" <= ch <= "\U0003134f"
    )


def _is_symbol(ch: str) -> bool:
    return unicodedata.category(ch)[0] in ("P", "S")


def _single_line(value: str) -> str:
    """Line breaks, tabs and other control characters become single spaces; the ends are trimmed."""
    cleaned = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in value)
    return _SPACES.sub(" ", cleaned).strip()


def _valid_point(match: re.Match[str]) -> bool:
    """Both point patterns group the same way: year, month-day as 2026-11-22 or as 2026年11月22日, then the clock."""
    year, month_a, day_a, month_b, day_b, hour, minute, second = match.groups()
    if year is not None:
        try:
            date(int(year), int(month_a or month_b), int(day_a or day_b))
        except ValueError:
            return False
    if hour is not None:
        return int(hour) < 24 and int(minute) < 60 and (second is None or int(second) < 60)
    return True


def _valid_time_or_date(value: str, point: re.Pattern[str]) -> bool:
    """One point or a range ``a~b`` of points, each a real calendar date and 24-hour clock time."""
    parts = [part.strip() for part in value.split("~")]
    if len(parts) > 2:
        return False
    for part in parts:
        match = point.fullmatch(part)
        if match is None or not _valid_point(match):
            return False
    return True


def _thing(value: str) -> str:
    # 20 characters: 汉字, digits, letters or symbols.
    return truncate(value, 20)


def _character_string(value: str) -> str:
    # 32 digits, letters or symbols - no 汉字 and (to be safe) no spaces, hence an ASCII "..." when shortened.
    if not _CHARACTER_STRING.fullmatch(value):
        raise ValueError("only letters, digits and symbols")
    return truncate(value, 32, "...")


def _number(value: str) -> str:
    if not _NUMBER.fullmatch(value) or len(value) > 32:
        raise ValueError("at most 32 digits, optionally with decimals")
    return value


def _letter(value: str) -> str:
    if not _LETTERS.fullmatch(value):
        raise ValueError("only letters")
    return value[:32]


def _symbol(value: str) -> str:
    if not all(_is_symbol(ch) for ch in value):
        raise ValueError("only symbols")
    return "".join(_clusters(value)[:5])


def _phrase(value: str) -> str:
    # At most 5 汉字 and nothing else, so no "…" either: the sixth character on is dropped.
    value = value.replace(" ", "")
    if not value or not all(_is_hanzi(ch) for ch in value):
        raise ValueError("only 汉字")
    return value[:5]


def _time(value: str) -> str:
    if not _valid_time_or_date(value, _TIME_POINT):
        raise ValueError("a 24-hour time such as 2026-11-22 09:30 or 09:30, or a range a~b")
    return value


def _date(value: str) -> str:
    if not _valid_time_or_date(value, _DATE_POINT):
        raise ValueError("a date such as 2026-11-22 or 2026年11月22日, optionally with a time, or a range a~b")
    return value


def _amount(value: str) -> str:
    match = _AMOUNT.fullmatch(value.replace(" ", ""))
    if match is None or len(match.group(1)) + len(match.group(2) or "") > 10:
        raise ValueError("a currency symbol and at most 10 digits, such as ¥300.00")
    return value.replace(" ", "")


def _phone_number(value: str) -> str:
    value = value.replace(" ", "")
    if not _PHONE.fullmatch(value) or len(value) > 17:
        raise ValueError("at most 17 digits and symbols, such as +86-0766-66888866")
    return value


def _car_number(value: str) -> str:
    value = value.replace(" ", "").upper()
    ok = (
        2 <= len(value) <= 8
        and all(ch.isascii() and ch.isalnum() for ch in value[1:-1])
        and all(_is_hanzi(ch) or (ch.isascii() and ch.isalnum()) for ch in (value[0], value[-1]))
    )
    if not ok:
        raise ValueError("a plate number such as 粤A8Z888")
    return value


def _name(value: str) -> str:
    # 10 汉字 (mixed with letters counts as Chinese), or 20 letters/symbols; dropped characters get no "…".
    if any(_is_hanzi(ch) for ch in value):
        if not all(_is_hanzi(ch) or (ch.isascii() and ch.isalpha()) for ch in value):
            raise ValueError("only 汉字 and letters")
        return value[:10]
    if not all(ch.isascii() and (ch.isalpha() or ch == " " or _is_symbol(ch)) for ch in value):
        raise ValueError("only letters and symbols")
    return value[:20].rstrip()


_RULES: dict[str, Callable[[str], str]] = {
    "thing": _thing,
    "character_string": _character_string,
    "number": _number,
    "letter": _letter,
    "symbol": _symbol,
    "phrase": _phrase,
    "time": _time,
    "date": _date,
    "amount": _amount,
    "phone_number": _phone_number,
    "car_number": _car_number,
    "name": _name,
}


def template_data(values: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The ``data`` of a send call from ``{"thing1": "...", "time2": "..."}``, each value made acceptable to WeChat.

    A key's type is its name without the trailing number, as in WeChat's templates (``thing1``,
    ``character_string2``, ``time3``, ``phrase4``, ``amount5``...). Values are put on one line; text that is too
    long is shortened (``thing`` with "…", ``character_string`` with "...", ``phrase``/``name``/``letter``/
    ``symbol`` by dropping the end, as their alphabets have no ellipsis). Values that no shortening can save
    (an empty value, a malformed time, date, amount, number or phone number, 汉字 in a ``character_string``...)
    raise :class:`TemplateValueInvalid` naming the key; the value itself is never in the error.
    """
    if not values:
        raise TemplateValueInvalid("订阅消息没有任何字段")
    data: dict[str, dict[str, str]] = {}
    for key, raw in values.items():
        match = _KEY.fullmatch(key)
        rule = _RULES.get(match.group(1)) if match else None
        if rule is None:
            raise TemplateValueInvalid(f"未知的模板字段类型：{key}", field=key)
        if not isinstance(raw, str):
            raise TemplateValueInvalid(f"模板字段 {key} 必须是文本", field=key)
        value = _single_line(raw)
        if not value:
            raise TemplateValueInvalid(f"模板字段 {key} 不能为空", field=key)
        try:
            data[key] = {"value": rule(value)}
        except ValueError as exc:
            raise TemplateValueInvalid(f"模板字段 {key} 格式不正确", field=key, rule=str(exc)) from None
    return data


# --- logging hygiene -----------------------------------------------------------------------------------------

_SECRET_QUERY = re.compile(r"((?:access_token|secret|js_code)=)[^&\s\"'#]+", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the values of access_token, secret and js_code query parameters masked."""
    return _SECRET_QUERY.sub(r"\1***", text)


class _RedactQuerySecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(str(arg)) if isinstance(arg, str | httpx.URL) else arg for arg in record.args)
        return True


def install_log_redaction() -> None:
    """Mask query-string secrets in httpx's request log lines (``HTTP Request: POST https://...?access_token=``).
    Idempotent; the sender calls it, and the logging set-up may call it for every WeChat client."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactQuerySecrets) for f in logger.filters):
        logger.addFilter(_RedactQuerySecrets())


def mask_openid(openid: str) -> str:
    """Enough of an openid to tell users apart in logs, not enough to address one: ``oUpF…eS6o``."""
    if len(openid) <= 8:
        return "***"
    return f"{openid[:4]}…{openid[-4:]}"


# --- the sender ----------------------------------------------------------------------------------------------


class _NoToken(Exception):
    def __init__(self, result: SendResult) -> None:
        super().__init__(result.detail)
        self.result = result


class WeChatMessageSender:
    """Sends subscription messages; one instance per process, shared by every coroutine (see the module text)."""

    def __init__(
        self,
        settings: WeChatSettings,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        miniprogram_state: MiniprogramState | None = None,
        lang: str = "zh_CN",
    ) -> None:
        self._settings = settings
        self._http = http
        self._clock = clock
        self._base = settings.api_base.rstrip("/")
        # Explicit argument, else ``settings.miniprogram_state`` where the settings carry one, else "formal".
        self._miniprogram_state = miniprogram_state or getattr(settings, "miniprogram_state", "formal")
        self._lang = lang
        self._token: str | None = None
        self._token_valid_until = 0.0
        self._token_lock = asyncio.Lock()
        self._token_failed_until = 0.0
        self._token_failure: SendResult | None = None
        install_log_redaction()

    async def send(self, openid: str, template_id: str, page: str, values: Mapping[str, str]) -> SendResult:
        who = mask_openid(openid)
        try:
            data = template_data(values)
        except TemplateValueInvalid as exc:
            detail = f"template value {exc.field or ''} refused before sending: {exc.details.get('rule', '')}"
            return self._logged(SendResult(SendStatus.PERMANENT_FAILURE, detail=detail.strip()), who, template_id)
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": data,
            "miniprogram_state": self._miniprogram_state,
            "lang": self._lang,
        }
        if page:
            body["page"] = page
        try:
            token = await self._access_token()
            result = await self._post(token, body)
            if result.errcode in TOKEN_ERRCODES:
                log.info("wechat access token rejected, refreshing", extra={"errcode": result.errcode})
                token = await self._access_token(rejected=token)
                result = await self._post(token, body)
                if result.errcode in TOKEN_ERRCODES:
                    result = SendResult(SendStatus.RETRY_LATER, result.errcode, "access token rejected twice")
        except _NoToken as exc:
            result = exc.result
        return self._logged(result, who, template_id)

    # -- the access token --

    def _cached_token(self, rejected: str | None) -> str | None:
        if self._token is not None and self._token != rejected and self._clock() < self._token_valid_until:
            return self._token
        return None

    async def _access_token(self, rejected: str | None = None) -> str:
        """The cached token, or a new one; ``rejected`` is a token WeChat just refused, never answered again."""
        token = self._cached_token(rejected)
        if token is not None:
            return token
        async with self._token_lock:
            # Whoever held the lock before us may have fetched one already.
            token = self._cached_token(rejected)
            if token is not None:
                return token
            if self._token_failure is not None and self._clock() < self._token_failed_until:
                raise _NoToken(self._token_failure)
            try:
                token, lifetime = await self._fetch_token()
            except _NoToken as exc:
                self._token, self._token_failure = None, exc.result
                self._token_failed_until = self._clock() + TOKEN_FAILURE_PAUSE_SECONDS
                raise
            self._token, self._token_failure = token, None
            self._token_valid_until = self._clock() + lifetime
            return token

    async def _fetch_token(self) -> tuple[str, float]:
        try:
            response = await self._http.get(
                f"{self._base}/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": self._settings.app_id,
                    "secret": self._settings.app_secret,
                },
                timeout=self._settings.timeout_seconds,
            )
        except httpx.HTTPError as exc:
            log.warning("wechat access token request failed", extra={"error": type(exc).__name__})
            raise _NoToken(_retry(f"access token: {type(exc).__name__}")) from None
        data = _json_object(response)
        if data is None:
            log.warning("wechat access token answer unusable", extra={"http_status": response.status_code})
            raise _NoToken(_retry(f"access token: http {response.status_code}"))
        errcode = _errcode(data)
        token = data.get("access_token")
        if errcode or not isinstance(token, str) or not token:
            level = logging.ERROR if errcode in TOKEN_CONFIG_ERRCODES else logging.WARNING
            log.log(level, "wechat refused the access token request", extra={"errcode": errcode})
            raise _NoToken(SendResult(SendStatus.RETRY_LATER, errcode or None, f"access token: {_errmsg(data)}"))
        expires_in = data.get("expires_in")
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or expires_in <= 0:
            expires_in = DEFAULT_TOKEN_LIFETIME_SECONDS
        # Refresh 5 minutes early; for an unusually short lifetime, halfway through.
        lifetime = max(float(expires_in) - TOKEN_REFRESH_MARGIN_SECONDS, float(expires_in) / 2)
        log.info("wechat access token fetched", extra={"expires_in": expires_in})
        return token, lifetime

    # -- the send call --

    async def _post(self, token: str, body: dict[str, Any]) -> SendResult:
        try:
            response = await self._http.post(
                f"{self._base}/cgi-bin/message/subscribe/send",
                params={"access_token": token},
                json=body,
                timeout=self._settings.timeout_seconds,
            )
        except httpx.HTTPError as exc:
            return _retry(type(exc).__name__)
        data = _json_object(response)
        if data is None:
            return _retry(f"http {response.status_code}")
        errcode = _errcode(data)
        msgid = data.get("msgid")
        return SendResult(
            classify_errcode(errcode),
            errcode,
            _errmsg(data),
            msgid if isinstance(msgid, int) and not isinstance(msgid, bool) else None,
        )

    @staticmethod
    def _logged(result: SendResult, who: str, template_id: str) -> SendResult:
        extra = {
            "openid": who,
            "template_id": template_id,
            "outcome": result.status.value,
            "errcode": result.errcode,
            "detail": result.detail,
        }
        level = logging.INFO if result.status in (SendStatus.SENT, SendStatus.REFUSED_BY_USER) else logging.WARNING
        log.log(level, "wechat subscribe message %s", result.status.value, extra=extra)
        return result


def _retry(detail: str) -> SendResult:
    return SendResult(SendStatus.RETRY_LATER, None, detail)


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    """WeChat's JSON answer, or None when the answer is not one (HTTP error status, a proxy's HTML page)."""
    if response.status_code != 200:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _errcode(data: Mapping[str, Any]) -> int:
    value = data.get("errcode") or 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _errmsg(data: Mapping[str, Any]) -> str:
    return redact(str(data.get("errmsg") or ""))[:_DETAIL_MAX]


__all__ = [
    "SendResult",
    "SendStatus",
    "TemplateValueInvalid",
    "WeChatMessageSender",
    "backoff_seconds",
    "classify_errcode",
    "install_log_redaction",
    "mask_openid",
    "template_data",
    "truncate",
    "wechat_length",
]
