from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from app.core.config import Settings, WeChatSettings
from app.core.context import AppContext, build_context, close_context
from tests.api.notifications.outbox_data import APP_ID, APP_SECRET, TEMPLATES
from tests.support.fake_wechat_messages import FakeWeChatMessagesState, fake_wechat_messages_app
from tests.support.servers import serve_in_thread


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def wechat_messages_server() -> Iterator[tuple[str, FakeWeChatMessagesState]]:
    app = fake_wechat_messages_app(APP_ID, APP_SECRET)
    with serve_in_thread(app) as url:
        yield url, app.state.fake


@pytest.fixture
def wechat(wechat_messages_server: tuple[str, FakeWeChatMessagesState]) -> FakeWeChatMessagesState:
    """The fake WeChat, with nothing received yet."""
    wechat_messages_server[1].reset()
    return wechat_messages_server[1]


@pytest.fixture
def outbox_settings(settings: Settings, wechat_messages_server: tuple[str, FakeWeChatMessagesState]) -> Settings:
    wechat = WeChatSettings(
        api_base=wechat_messages_server[0],
        app_id=APP_ID,
        app_secret=APP_SECRET,
        timeout_seconds=2.0,
        templates=TEMPLATES,
    )
    return settings.model_copy(update={"wechat": wechat, "worker_batch_size": 20, "worker_idle_seconds": 0.05})


@pytest.fixture
async def context(outbox_settings: Settings) -> AsyncIterator[AppContext]:
    context = build_context(outbox_settings)
    yield context
    await close_context(context)
