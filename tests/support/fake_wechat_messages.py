"""A fake of WeChat's access-token and subscription-message endpoints, to serve over real HTTP with
``tests.support.servers.serve_in_thread``.

It is as strict as WeChat, and where WeChat's rules are unclear, stricter: a value breaking a template rule is
answered 47003 (lengths are counted in UTF-16 code units, so an emoji counts 2), an unknown token 40001.
Its rules are written independently of ``app.notifications.wechat`` so a passing send proves the client obeyed
them rather than that both sides share a bug.

Behaviour by ``touser``: ``o-refused-*`` 43101, ``o-busy-*`` -1, ``o-quota-*`` 45009, ``o-http500-*`` an HTTP 500
page, ``o-slow-*`` answers after ``state.slow_seconds``; anything not shaped like an openid is 40003.
Every call lands in ``state.calls``; tokens issued are in ``state.issued_tokens``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

OPENID = re.compile(r"o[A-Za-z0-9_-]{5,}")
_HANZI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
_DATE = r"\d{4}(?:-\d{1,2}-\d{1,2}|年\d{1,2}月\d{1,2}日)"
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?"
_TIME_POINT = rf"(?:{_DATE} )?{_CLOCK}"
_DATE_POINT = rf"{_DATE}(?: {_CLOCK})?"


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _range_of(point: str) -> re.Pattern[str]:
    return re.compile(rf"{point}(?: ?~ ?{point})?")


RULES: dict[str, Any] = {
    "thing": lambda v: 0 < _units(v) <= 20,
    "character_string": lambda v: re.fullmatch(r"[!-~]{1,32}", v) is not None,
    "number": lambda v: re.fullmatch(r"\d+(?:\.\d+)?", v) is not None and len(v) <= 32,
    "letter": lambda v: re.fullmatch(r"[A-Za-z]{1,32}", v) is not None,
    "phrase": lambda v: _HANZI.fullmatch(v) is not None and len(v) <= 5,
    "time": lambda v: _range_of(_TIME_POINT).fullmatch(v) is not None,
    "date": lambda v: _range_of(_DATE_POINT).fullmatch(v) is not None,
    "amount": lambda v: (
        re.fullmatch(r"[¥￥$€£]\d{1,10}(?:\.\d{1,2})?元?", v) is not None and sum(c.isdigit() for c in v) <= 10
    ),
    "phone_number": lambda v: re.fullmatch(r"[0-9+\-()#*]{1,17}", v) is not None,
}


@dataclass
class FakeWeChatMessagesState:
    app_id: str
    app_secret: str
    templates: set[str] = field(default_factory=lambda: {"tmpl-status", "tmpl-reward"})
    pages: set[str] = field(default_factory=lambda: {"pages/report/detail", "pages/index/index"})
    calls: list[dict[str, Any]] = field(default_factory=list)
    issued_tokens: list[str] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    sent: list[dict[str, Any]] = field(default_factory=list)
    # Set to make the token endpoint answer this errcode (e.g. -1 busy) instead of a token.
    token_errcode: int | None = None
    # Seconds the token endpoint takes, so concurrent clients overlap like they would against WeChat.
    token_delay: float = 0.05
    # Answer 40001 to every send, however new the token.
    reject_all_tokens: bool = False
    slow_seconds: float = 1.0
    expires_in: int = 7200
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.issued_tokens.clear()
            self.valid_tokens.clear()
            self.sent.clear()
        self.token_errcode = None
        self.token_delay = 0.05
        self.reject_all_tokens = False
        self.slow_seconds = 1.0
        self.expires_in = 7200

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (as after another process refreshed 5+ minutes ago)."""
        with self._lock:
            self.valid_tokens.clear()

    def record(self, call: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(call)

    def endpoint_calls(self, endpoint: str) -> list[dict[str, Any]]:
        with self._lock:
            return [call for call in self.calls if call["endpoint"] == endpoint]

    def issue_token(self) -> str:
        token = f"FAKE-ACCESS-TOKEN-{len(self.issued_tokens) + 1}-{secrets.token_hex(12)}"
        with self._lock:
            self.issued_tokens.append(token)
            self.valid_tokens.add(token)
        return token


def invalid_data_key(data: Any) -> str | None:
    """The first key of ``data`` WeChat would refuse, or None."""
    if not isinstance(data, dict) or not data:
        return ""
    for key, item in data.items():
        match = re.fullmatch(r"([a-z_]+)\d+", key)
        rule = RULES.get(match.group(1)) if match else None
        value = item.get("value") if isinstance(item, dict) else None
        if rule is None or not isinstance(value, str) or not rule(value):
            return key
    return None


def fake_wechat_messages_app(app_id: str, app_secret: str) -> FastAPI:
    app = FastAPI()
    state = FakeWeChatMessagesState(app_id=app_id, app_secret=app_secret)
    app.state.fake = state

    @app.get("/cgi-bin/token")
    async def token(grant_type: str = "", appid: str = "", secret: str = "") -> Any:
        state.record({"endpoint": "token", "appid": appid, "grant_type": grant_type})
        await asyncio.sleep(state.token_delay)
        if state.token_errcode is not None:
            return {"errcode": state.token_errcode, "errmsg": "system error"}
        if grant_type != "client_credential" or appid != state.app_id:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if secret != state.app_secret:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        return {"access_token": state.issue_token(), "expires_in": state.expires_in}

    @app.post("/cgi-bin/message/subscribe/send")
    async def send(request: Request, access_token: str = "") -> Any:
        try:
            body = await request.json()
        except ValueError:
            body = None
        state.record({"endpoint": "send", "access_token": access_token, "body": body})
        if state.reject_all_tokens or access_token not in state.valid_tokens:
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
        if not isinstance(body, dict):
            return {"errcode": 47001, "errmsg": "data format error"}
        touser = str(body.get("touser") or "")
        if touser.startswith("o-http500-"):
            return PlainTextResponse("<html>500 Internal Server Error</html>", status_code=500)
        if touser.startswith("o-slow-"):
            await asyncio.sleep(state.slow_seconds)
        if not OPENID.fullmatch(touser):
            return {"errcode": 40003, "errmsg": "invalid openid"}
        if body.get("template_id") not in state.templates:
            return {"errcode": 40037, "errmsg": "invalid template id"}
        page = body.get("page")
        if page is not None and str(page).split("?", 1)[0] not in state.pages:
            return {"errcode": 41030, "errmsg": "invalid page"}
        if body.get("miniprogram_state", "formal") not in ("developer", "trial", "formal"):
            return {"errcode": 47003, "errmsg": "argument invalid! miniprogram_state invalid"}
        bad = invalid_data_key(body.get("data"))
        if bad is not None:
            return {"errcode": 47003, "errmsg": f"argument invalid! data.{bad}.value invalid rid: fake"}
        if touser.startswith("o-refused-"):
            return {"errcode": 43101, "errmsg": "user refuse to accept the msg"}
        if touser.startswith("o-busy-"):
            return JSONResponse({"errcode": -1, "errmsg": "system error"})
        if touser.startswith("o-quota-"):
            return {"errcode": 45009, "errmsg": "reach max api daily quota limit"}
        with state._lock:
            state.sent.append(body)
            msgid = len(state.sent)
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    return app
