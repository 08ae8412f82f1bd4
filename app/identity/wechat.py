"""WeChat's code2session exchange: the one-time code from ``wx.login`` becomes an openid.

The session_key WeChat returns stays in this module: it is neither stored nor logged nor answered to anyone.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import httpx

from app.core.config import WeChatSettings
from app.identity.errors import WeChatCodeInvalid, WeChatUnavailable

log = logging.getLogger(__name__)

# errcodes that mean the code itself is bad (invalid, used, expired): the user must log in again.
_CODE_ERRORS = {40029, 40163, 40226}
DEV_CODE = re.compile(r"^dev:([A-Za-z0-9_-]{1,32})$")


@dataclass(frozen=True)
class WeChatSession:
    openid: str
    unionid: str | None


class WeChatAuthClient:
    def __init__(self, settings: WeChatSettings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http

    async def code_to_session(self, code: str) -> WeChatSession:
        dev = DEV_CODE.match(code)
        if dev and self._settings.dev_login:
            return WeChatSession(openid=f"dev-openid-{dev.group(1)}", unionid=None)
        try:
            response = await self._http.get(
                f"{self._settings.api_base.rstrip('/')}/sns/jscode2session",
                params={
                    "appid": self._settings.app_id,
                    "secret": self._settings.app_secret,
                    "js_code": code,
                    "grant_type": "authorization_code",
                },
                timeout=self._settings.timeout_seconds,
            )
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("code2session failed", extra={"error": type(exc).__name__})
            raise WeChatUnavailable() from exc
        return _session_from(data)


def _session_from(data: object) -> WeChatSession:
    if not isinstance(data, dict):
        raise WeChatUnavailable()
    errcode = data.get("errcode") or 0
    if errcode in _CODE_ERRORS:
        raise WeChatCodeInvalid()
    if errcode:
        log.warning("code2session refused", extra={"errcode": errcode})
        raise WeChatUnavailable()
    openid = data.get("openid")
    if not isinstance(openid, str) or not openid:
        raise WeChatUnavailable()
    unionid = data.get("unionid")
    return WeChatSession(openid=openid, unionid=unionid if isinstance(unionid, str) else None)
