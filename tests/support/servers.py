"""Real HTTP servers on free loopback ports: a fake WeChat API and a live instance of our own app."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, port: int | None = None) -> Iterator[str]:
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def fake_wechat_app() -> FastAPI:
    """code2session as WeChat answers it: ``code-<name>`` logs in as openid ``openid-<name>``; ``used`` is a
    spent code (40163); ``busy`` is WeChat's system-busy (-1); ``broken`` answers non-JSON."""
    app = FastAPI()
    app.state.calls = []

    @app.get("/sns/jscode2session")
    async def jscode2session(appid: str, secret: str, js_code: str, grant_type: str) -> Any:
        app.state.calls.append({"appid": appid, "js_code": js_code, "grant_type": grant_type})
        if js_code.startswith("code-"):
            name = js_code.removeprefix("code-")
            return {"openid": f"openid-{name}", "session_key": f"SECRET-SESSION-KEY-{name}"}
        if js_code == "used":
            return {"errcode": 40163, "errmsg": "code been used"}
        if js_code == "busy":
            return {"errcode": -1, "errmsg": "system error"}
        if js_code == "broken":
            from starlette.responses import PlainTextResponse

            return PlainTextResponse("<html>bad gateway</html>")
        return {"errcode": 40029, "errmsg": "invalid code"}

    return app
