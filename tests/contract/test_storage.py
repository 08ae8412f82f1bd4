"""Contract suite for ObjectStorage.

The same tests run against LocalDiskStorage and against S3Storage talking HTTP to a moto server, followed by
fault tests specific to each backend.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from uuid import uuid4

import anyio
import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.core.errors import DomainError, InvalidInput
from app.storage import (
    InvalidObjectKey,
    LocalDiskStorage,
    ObjectNotFound,
    ObjectStorage,
    S3Storage,
    StorageUnavailable,
    UrlSigner,
)
from app.storage.router import router as media_router

pytestmark = pytest.mark.anyio

SECRET = b"contract-test-secret-0123456789abcdef"
BASE_URL = "http://media.test"
TTL = timedelta(minutes=5)
INVALID_KEYS = [
    "../x",
    "/x",
    "a//b",
    "a b",
    "x" * 600,
    "",
    "a/./b",
    "a/",
    "a/../b",
    "照片.jpg",
    "a\nb",
    "a~obj",  # "~" is reserved by the local layout
    "x" * 201,  # segments are capped at 200 characters
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def s3_storage(endpoint: str, bucket: str | None = None, **kwargs: float) -> S3Storage:
    bucket = bucket or f"evidence-{uuid4().hex[:16]}"
    return S3Storage(endpoint, "testing", "testing", bucket, secure=False, **kwargs)


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStorage:
    if request.param == "local":
        return LocalDiskStorage(tmp_path / "objects", UrlSigner(SECRET, BASE_URL))
    s3 = s3_storage(request.getfixturevalue("moto_endpoint"))  # a fresh bucket per test keeps tests isolated
    await s3.ensure_bucket()
    return s3


def media_app(storage: ObjectStorage) -> FastAPI:
    app = FastAPI()
    app.include_router(media_router)
    app.state.storage = storage

    @app.exception_handler(DomainError)  # stands in for the app's own handler in app.core.http
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    return app


@pytest.fixture
async def http(storage: ObjectStorage) -> AsyncIterator[httpx.AsyncClient]:
    """Fetches signed URLs: local ones go through the media router in-process, S3 ones over HTTP to moto."""
    local = isinstance(storage, LocalDiskStorage)
    transport = httpx.ASGITransport(app=media_app(storage)) if local else None
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


def error_code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


# -- contract ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", bytes(range(256)) * 4, b"\nhzobj1 text/plain\n\n", os.urandom(1_500_000)],
    ids=["empty", "nul", "all-bytes", "header-lookalike", "1.5MB"],
)
async def test_put_get_round_trip(storage: ObjectStorage, data: bytes) -> None:
    await storage.put("reports/r1/photo.jpg", data, "image/jpeg")
    assert await storage.get("reports/r1/photo.jpg") == data


async def test_overwrite_replaces_bytes_and_size(storage: ObjectStorage) -> None:
    await storage.put("k/photo", b"old version, longer", "image/jpeg")
    await storage.put("k/photo", b"new", "image/png")
    assert await storage.get("k/photo") == b"new"
    [listed] = await storage.list("k/")
    assert listed.size == 3


async def test_exists_follows_put_and_delete(storage: ObjectStorage) -> None:
    assert not await storage.exists("a/b.jpg")
    await storage.put("a/b.jpg", b"x", "image/jpeg")
    assert await storage.exists("a/b.jpg")
    await storage.delete("a/b.jpg")
    assert not await storage.exists("a/b.jpg")


async def test_delete_is_idempotent(storage: ObjectStorage) -> None:
    await storage.delete("never/stored")
    await storage.put("once", b"x", "text/plain")
    await storage.delete("once")
    await storage.delete("once")
    with pytest.raises(ObjectNotFound):
        await storage.get("once")


async def test_get_missing_raises_object_not_found(storage: ObjectStorage) -> None:
    with pytest.raises(ObjectNotFound) as caught:
        await storage.get("missing/photo.jpg")
    assert caught.value.code == "object_not_found"
    assert caught.value.status == 404


async def test_list_by_prefix(storage: ObjectStorage) -> None:
    before = datetime.now(UTC) - timedelta(minutes=1)
    objects = {
        "r/1/a.jpg": b"abc",
        "r/1/b.jpg": b"abcde",
        "r/10/c.jpg": b"",
        "r/2/d.jpg": b"d",
        "other": b"o",
    }
    for key, data in objects.items():
        await storage.put(key, data, "image/jpeg")

    listed = await storage.list("r/1/")
    assert [(o.key, o.size) for o in listed] == [("r/1/a.jpg", 3), ("r/1/b.jpg", 5)]
    for item in listed:
        assert item.modified_at.utcoffset() == timedelta(0)
        assert before <= item.modified_at <= datetime.now(UTC) + timedelta(minutes=1)

    assert [o.key for o in await storage.list("r/1")] == ["r/1/a.jpg", "r/1/b.jpg", "r/10/c.jpg"]
    assert [o.key for o in await storage.list("")] == sorted(objects)
    assert await storage.list("nothing/here/") == []


async def test_key_can_be_both_object_and_prefix(storage: ObjectStorage) -> None:
    # S3 allows "a" and "a/b" side by side; the local layout must too.
    await storage.put("a", b"file", "text/plain")
    await storage.put("a/b", b"nested", "text/plain")
    assert (await storage.get("a"), await storage.get("a/b")) == (b"file", b"nested")
    assert [o.key for o in await storage.list("a")] == ["a", "a/b"]


@pytest.mark.parametrize("key", INVALID_KEYS)
async def test_invalid_keys_are_rejected_by_every_operation(storage: ObjectStorage, key: str) -> None:
    operations: list[Callable[[], Awaitable[object]]] = [
        lambda: storage.put(key, b"x", "text/plain"),
        lambda: storage.get(key),
        lambda: storage.exists(key),
        lambda: storage.delete(key),
        lambda: storage.signed_url(key, TTL),
    ]
    for operation in operations:
        with pytest.raises(InvalidObjectKey) as caught:
            await operation()
        assert caught.value.code == "invalid_object_key"


@pytest.mark.parametrize("prefix", ["../", "/x", "a//", "a b"])
async def test_invalid_list_prefix_is_rejected(storage: ObjectStorage, prefix: str) -> None:
    with pytest.raises(InvalidObjectKey):
        await storage.list(prefix)


@pytest.mark.parametrize("content_type", ["", "image/jpeg\r\nX-Evil: 1", "图片/jpeg", "x" * 256])
async def test_invalid_content_type_is_rejected(storage: ObjectStorage, content_type: str) -> None:
    with pytest.raises(InvalidInput):
        await storage.put("k", b"x", content_type)


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(days=8)])
async def test_signed_url_lifetime_is_bounded(storage: ObjectStorage, ttl: timedelta) -> None:
    with pytest.raises(ValueError):
        await storage.signed_url("k", ttl)


async def test_signed_url_serves_the_bytes(storage: ObjectStorage, http: httpx.AsyncClient) -> None:
    data = os.urandom(1_500_000)
    await storage.put("reports/r1/photo.jpg", data, "image/jpeg")
    response = await http.get(await storage.signed_url("reports/r1/photo.jpg", TTL))
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"].startswith("image/jpeg")


async def test_signed_url_as_of_an_instant_is_stable_and_serves(
    storage: ObjectStorage, http: httpx.AsyncClient
) -> None:
    """Public responses sign as of a fixed instant so that their bytes (and ETag) stay the same while cached."""
    await storage.put("reports/r2/display.jpg", b"jpeg bytes", "image/jpeg")
    issued = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    first = await storage.signed_url("reports/r2/display.jpg", TTL, issued_at=issued)
    assert first == await storage.signed_url("reports/r2/display.jpg", TTL, issued_at=issued)
    assert first != await storage.signed_url("reports/r2/display.jpg", TTL, issued_at=issued + timedelta(seconds=1))
    response = await http.get(first)
    assert response.status_code == 200 and response.content == b"jpeg bytes"


async def test_overwrite_is_atomic_for_concurrent_readers(storage: ObjectStorage) -> None:
    versions = {b"A" * 300_000, b"B" * 200_000}
    await storage.put("hot", b"A" * 300_000, "image/jpeg")
    seen: set[bytes] = set()

    async def writer() -> None:
        for i in range(10):
            await storage.put("hot", b"B" * 200_000 if i % 2 else b"A" * 300_000, "image/jpeg")

    async def reader() -> None:
        for _ in range(10):
            seen.add(await storage.get("hot"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer)
        tg.start_soon(reader)
        tg.start_soon(reader)
    assert seen <= versions


async def test_check_passes(storage: ObjectStorage) -> None:
    await storage.check()


# -- local media router -----------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalDiskStorage:
    return LocalDiskStorage(tmp_path / "objects", UrlSigner(SECRET, BASE_URL))


@pytest.fixture
async def local_http(local: LocalDiskStorage) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=media_app(local))) as client:
        yield client


async def test_local_signed_url_shape_and_headers(local: LocalDiskStorage, local_http: httpx.AsyncClient) -> None:
    await local.put("r/p.png", b"png-bytes", "image/png")
    url = await local.signed_url("r/p.png", TTL)
    assert url.startswith(f"{BASE_URL}/v1/media/r/p.png?expires=")
    response = await local_http.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == "9"
    assert response.headers["x-content-type-options"] == "nosniff"
    directive, max_age = response.headers["cache-control"].split(", ")
    assert directive == "private"
    assert 0 < int(max_age.removeprefix("max-age=")) <= TTL.total_seconds()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: url[:-4] + ("0000" if not url.endswith("0000") else "1111"),  # signature changed
        lambda url: url.replace("expires=", "expires=9"),  # lifetime stretched
        lambda url: url.replace("/r/p.png", "/r/q.png"),  # pointed at another object
        lambda url: url.split("&signature=")[0],  # signature dropped
        lambda url: url.replace("signature=", "signature=%E7%85%A7"),  # non-ASCII junk
    ],
    ids=["signature", "expires", "key", "missing", "non-ascii"],
)
async def test_local_tampered_url_is_forbidden(
    local: LocalDiskStorage, local_http: httpx.AsyncClient, tamper: Callable[[str], str]
) -> None:
    await local.put("r/p.png", b"x", "image/png")
    await local.put("r/q.png", b"y", "image/png")
    response = await local_http.get(tamper(await local.signed_url("r/p.png", TTL)))
    assert response.status_code == 403
    assert error_code(response) == "invalid_signature"


async def test_local_expired_url_is_forbidden(local: LocalDiskStorage, local_http: httpx.AsyncClient) -> None:
    await local.put("r/p.png", b"x", "image/png")
    url = local.url_signer.sign("r/p.png", datetime.now(UTC) - timedelta(seconds=5))
    response = await local_http.get(url)
    assert response.status_code == 403
    assert error_code(response) == "url_expired"


async def test_local_signed_url_for_missing_object_is_404(
    local: LocalDiskStorage, local_http: httpx.AsyncClient
) -> None:
    response = await local_http.get(await local.signed_url("gone.jpg", TTL))
    assert response.status_code == 404
    assert error_code(response) == "object_not_found"


async def test_media_route_is_404_when_storage_is_not_local(moto_endpoint: str, local: LocalDiskStorage) -> None:
    await local.put("r/p.png", b"x", "image/png")
    url = await local.signed_url("r/p.png", TTL)
    app = media_app(s3_storage(moto_endpoint))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        response = await client.get(url)
    assert response.status_code == 404


def test_media_route_is_documented() -> None:
    operation = media_app(LocalDiskStorage(Path("unused"), UrlSigner(SECRET, BASE_URL))).openapi()["paths"][
        "/v1/media/{key}"
    ]["get"]
    assert operation["operationId"] == "get_media"
    assert {"200", "403", "404"} <= set(operation["responses"])


# -- faults: S3 -------------------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed on exit: connections are refused


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) but never answers: a hung server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@pytest.fixture
def failing_port() -> Iterator[int]:
    """An HTTP server answering 503 to everything, like an overloaded gateway in front of S3."""

    class Handler(BaseHTTPRequestHandler):
        def _fail(self) -> None:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_PUT = do_HEAD = do_DELETE = _fail

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


async def assert_unavailable_quickly(storage: S3Storage, limit: float = 10.0) -> None:
    operations: dict[str, Callable[[], Awaitable[object]]] = {
        "put": lambda: storage.put("k", b"x" * 1000, "image/jpeg"),
        "get": lambda: storage.get("k"),
        "exists": lambda: storage.exists("k"),
        "list": lambda: storage.list(""),
        "check": storage.check,
    }
    for name, operation in operations.items():
        started = time.monotonic()
        with pytest.raises(StorageUnavailable) as caught:
            await operation()
        elapsed = time.monotonic() - started
        assert elapsed < limit, f"{name} took {elapsed:.1f}s"
        assert caught.value.status == 503
        assert caught.value.code == "storage_unavailable"


async def test_s3_refused_connection_is_unavailable(closed_port: int) -> None:
    await assert_unavailable_quickly(s3_storage(f"127.0.0.1:{closed_port}"))


async def test_s3_hung_server_is_unavailable(silent_port: int) -> None:
    await assert_unavailable_quickly(s3_storage(f"127.0.0.1:{silent_port}", read_timeout=0.5), limit=5.0)


async def test_s3_5xx_is_unavailable(failing_port: int) -> None:
    await assert_unavailable_quickly(s3_storage(f"127.0.0.1:{failing_port}"))


async def test_s3_missing_bucket_fails_check(moto_endpoint: str) -> None:
    with pytest.raises(StorageUnavailable):
        await s3_storage(moto_endpoint, bucket=f"absent-{uuid4().hex[:12]}").check()


async def test_s3_signed_url_uses_public_endpoint(moto_endpoint: str) -> None:
    storage = S3Storage(
        moto_endpoint,
        "testing",
        "testing",
        "evidence",
        secure=False,
        public_endpoint="https://img.example.cn",
    )
    url = await storage.signed_url("r/p.jpg", TTL)
    assert url.startswith("https://img.example.cn/evidence/r/p.jpg?")
    assert "X-Amz-Expires=300" in url


# -- faults: local disk -----------------------------------------------------------------------------


def leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if "~tmp" in p.name]


async def test_local_root_is_a_file(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    root.write_bytes(b"not a directory")
    storage = LocalDiskStorage(root, UrlSigner(SECRET, BASE_URL))
    operations: list[Callable[[], Awaitable[object]]] = [
        lambda: storage.put("r/p.jpg", b"x", "image/jpeg"),
        lambda: storage.put("p.jpg", b"x", "image/jpeg"),
        lambda: storage.get("r/p.jpg"),
        lambda: storage.exists("r/p.jpg"),
        lambda: storage.list("r/"),
        storage.check,
    ]
    for operation in operations:
        with pytest.raises(StorageUnavailable):
            await operation()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
async def test_local_unwritable_root(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    root.mkdir(mode=0o500)
    storage = LocalDiskStorage(root, UrlSigner(SECRET, BASE_URL))
    try:
        with pytest.raises(StorageUnavailable):
            await storage.put("r/p.jpg", b"x", "image/jpeg")
        with pytest.raises(StorageUnavailable):
            await storage.check()
    finally:
        root.chmod(0o700)


def fail_with(error: int) -> Callable[..., None]:
    def fail(*_args: object) -> None:
        raise OSError(error, os.strerror(error))

    return fail


@pytest.mark.parametrize(
    ("function", "error"),
    [("replace", errno.EIO), ("fsync", errno.ENOSPC), ("open", errno.EACCES)],
    ids=["rename-fails", "disk-full", "permission-denied"],  # the last one also runs as root, unlike chmod
)
async def test_local_failed_put_leaves_nothing_behind(
    local: LocalDiskStorage, monkeypatch: pytest.MonkeyPatch, function: str, error: int
) -> None:
    await local.put("r/old.jpg", b"previous version", "image/jpeg")
    monkeypatch.setattr(os, function, fail_with(error))
    with pytest.raises(StorageUnavailable):
        await local.put("r/new.jpg", b"x" * 100_000, "image/jpeg")
    with pytest.raises(StorageUnavailable):
        await local.put("r/old.jpg", b"half-written replacement", "image/jpeg")
    monkeypatch.undo()

    assert leftovers(local.root) == []
    assert not await local.exists("r/new.jpg")
    assert await local.get("r/old.jpg") == b"previous version"
    assert [o.key for o in await local.list("")] == ["r/old.jpg"]


async def test_local_files_are_private(local: LocalDiskStorage) -> None:
    await local.put("r/p.jpg", b"x", "image/jpeg")
    [path] = local.root.rglob("*~obj")
    assert path.stat().st_mode & 0o077 == 0
