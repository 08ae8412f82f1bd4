"""From a case command to a WeChat subscription message: opt-ins counted, the message written with the change and
sent after the commit by the worker, once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from app.notifications.worker import drain_once
from tests.support.api import Api
from tests.support.fake_wechat_messages import fake_wechat_messages_app
from tests.support.servers import fake_wechat_app, serve_in_thread

TEMPLATES = {"accepted": "tmpl-status", "progress": "tmpl-status", "result": "tmpl-status", "reward": "tmpl-reward"}


@pytest.fixture
def wechat() -> Iterator[tuple[str, Any]]:
    """One fake WeChat answering code2session and the message API, like api.weixin.qq.com."""
    login, messages = fake_wechat_app(), fake_wechat_messages_app("wx-test", "test-secret")
    combined = FastAPI()
    combined.include_router(login.router)
    combined.include_router(messages.router)
    with serve_in_thread(combined) as url:
        yield url, messages.state.fake


@pytest.fixture
def messaging_api(settings: Settings, wechat: tuple[str, Any]) -> Iterator[Api]:
    configured = settings.model_copy(
        update={"wechat": settings.wechat.model_copy(update={"api_base": wechat[0], "templates": TEMPLATES})}
    )
    with TestClient(create_app(configured)) as client:
        yield Api(client)


def test_an_accepted_case_sends_one_message_to_a_subscribed_reporter(
    messaging_api: Api, wechat: tuple[str, Any]
) -> None:
    api, fake = messaging_api, wechat[1]
    reporter = api.reporter("alice")
    templates = api.client.get("/v1/me/subscriptions/templates").json()
    assert templates["accepted"] == "tmpl-status"
    counts = api.client.post(
        "/v1/me/subscriptions", headers=reporter, json={"asked": ["accepted", "result"], "accepted": ["accepted"]}
    )
    assert counts.status_code == 200, counts.text
    assert counts.json()["available"] == {"accepted": 1, "result": 0}
    unknown = api.client.post("/v1/me/subscriptions", headers=reporter, json={"asked": ["spam"], "accepted": []})
    assert unknown.status_code == 422

    case_id = api.submit(reporter).json()["id"]
    api.accept_and_assign(case_id)
    context = api.client.app.state.context  # type: ignore[attr-defined]
    first = api.client.portal.call(drain_once, context)  # type: ignore[union-attr]
    again = api.client.portal.call(drain_once, context)  # type: ignore[union-attr]
    assert first.sent == 1 and again.sent == 0
    [message] = fake.sent
    assert message["touser"] == "openid-alice" and message["template_id"] == "tmpl-status"
    assert any("已受理" in str(v) for v in message["data"].values())

    # Without an opt-in left, the result message is not sent: a one-time subscription allows one message.
    inspector = api.staff("inspector")
    api.command(inspector, case_id, "start-verification")
    api.command(inspector, case_id, "verify", {"outcome": "false", "findings": "不属实"})
    api.command(inspector, case_id, "close")
    api.client.portal.call(drain_once, context)  # type: ignore[union-attr]
    assert len(fake.sent) == 1
