"""Oversized input is refused without the server process growing: measured on a real server process."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from app.core.config import Settings
from tests.support.images import png_bomb
from tests.support.servers import free_port

GROWTH_LIMIT = 50 * 1024 * 1024
cached_bomb = functools.cache(png_bomb)


@pytest.fixture
def server_process(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    env = {
        **os.environ,
        "HAZARD_ENVIRONMENT": "test",
        "HAZARD_EMBEDDED_WORKER": "false",
        "HAZARD_LOG_LEVEL": "WARNING",
        "HAZARD_DATABASE__URL": settings.database.url,
        "HAZARD_STORAGE__LOCAL_ROOT": str(tmp_path / "objects"),
        "HAZARD_WECHAT__API_BASE": settings.wechat.api_base,
        "HAZARD_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app", "--port", str(port)]
    log = (tmp_path / "server.log").open("wb")  # read by the tests: no unhandled error may be logged
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.1)
        yield url, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n\r\n\xff\xd8\xff'
    sent = 0
    while sent < total:
        yield b"\0" * size
        sent += size
    yield b"\r\n--b--\r\n"


def test_bombs_and_oversized_bodies_do_not_grow_the_process(server_process: tuple[str, psutil.Process]) -> None:
    url, process = server_process
    token = httpx.post(f"{url}/v1/auth/wechat/login", json={"code": "code-alice"}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    # Warm up the upload path with a real photo so that imports and pools are already in the baseline.
    warm = httpx.post(
        f"{url}/v1/uploads",
        headers=headers,
        files={
            "file": (
                "a.jpg",
                (Path(__file__).resolve().parents[3].parent / "shared/data/photos/jpg/gps/DSCN0010.jpg").read_bytes(),
            )
        },
    )
    assert warm.status_code == 201
    baseline = process.memory_info().rss

    bomb = httpx.post(f"{url}/v1/uploads", headers=headers, files={"file": ("bomb.png", cached_bomb())})
    assert bomb.status_code == 413 and bomb.json()["error"]["code"] == "image_too_large"

    declared = httpx.post(
        f"{url}/v1/uploads", headers=headers, files={"file": ("big.jpg", b"\xff\xd8\xff" + b"\0" * (11 * 1024 * 1024))}
    )
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "file_too_large"

    # No Content-Length: the body streams in chunks and is cut off once past the limit (60 MB offered).
    try:
        streamed = httpx.post(
            f"{url}/v1/uploads",
            headers={**headers, "Content-Type": "multipart/form-data; boundary=b"},
            content=_chunks(60 * 1024 * 1024),
            timeout=30,
        )
        assert streamed.status_code == 413
    except httpx.HTTPError:
        pass  # the server may close the connection while the client is still sending: also a refusal
    growth = process.memory_info().rss - baseline
    assert growth < GROWTH_LIMIT, f"server grew by {growth / 1e6:.1f} MB"
    assert httpx.get(f"{url}/healthz").status_code == 200


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _exchange(url: str, head: bytes, body: bytes, *, close_after_sending: bool) -> bytes:
    """Send ``head`` and ``body`` over a socket of its own, as a client that lies about its Content-Length would,
    and return what the server answered before closing (or, with ``close_after_sending``, nothing is awaited)."""
    with socket.create_connection(_address(url), timeout=10) as connection:
        connection.sendall(head + body)
        if close_after_sending:
            connection.shutdown(socket.SHUT_RDWR)
            return b""
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass  # closed with bytes of ours unread: what it answered before is all there is
        return answer


def test_a_lying_content_length_over_a_socket_is_refused_cleanly(
    server_process: tuple[str, psutil.Process], tmp_path: Path
) -> None:
    url, _ = server_process
    token = httpx.post(f"{url}/v1/auth/wechat/login", json={"code": "code-alice"}).json()["access_token"]
    opening = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    )
    photo = opening + b"\xff\xd8\xff" + b"\0" * 100_000 + b"\r\n--b--\r\n"

    def head(length: int) -> bytes:
        return (
            f"POST /v1/uploads HTTP/1.1\r\nHost: {url.removeprefix('http://')}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode()

    # Says less than it sends: the server reads what was said (a cut-off form), refuses it, and takes the rest for
    # a request of its own, which is no HTTP: refused too, and the connection closed. (A short body, read whole:
    # a server closing with bytes unread resets the connection, which can drop its answer before the client reads.)
    short = opening + b"\xff\xd8\xff" + b"\0" * 1000 + b"\r\n--b--\r\n"
    answer = _exchange(url, head(200), short, close_after_sending=False)
    statuses = [int(line.split()[1]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]
    assert statuses and all(400 <= status < 500 for status in statuses), answer[:500]
    # Says more than it sends, then goes away: no answer is possible; nothing may be stored or logged as a fault.
    _exchange(url, head(5_000_000), photo, close_after_sending=True)
    # Says more than it sends and waits: the server waits for the rest, then the client gives up and goes.
    with pytest.raises(TimeoutError), socket.create_connection(_address(url), timeout=1) as connection:
        connection.sendall(head(len(photo) + 1) + photo)
        connection.recv(65536)
    time.sleep(0.5)  # the server notices the disconnections
    assert httpx.get(f"{url}/healthz").status_code == 200
    good = httpx.post(
        f"{url}/v1/uploads", headers={"Authorization": f"Bearer {token}"}, files={"file": ("x.jpg", b"\xff\xd8")}
    )
    assert good.status_code in (415, 422), good.text  # the server answers the next request normally
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert "unhandled error" not in log and "Traceback" not in log, log[-3000:]
    stored = [path for path in (tmp_path / "objects").rglob("*") if path.is_file()]
    assert stored == [], stored
