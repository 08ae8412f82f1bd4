"""Retries, races and failures: nothing is made twice, nothing is half-made, nothing points at nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.config import Settings, StorageSettings
from app.core.context import build_context, close_context
from app.core.db import unit_of_work
from app.intake import service as intake_service
from app.intake.models import Report, Upload
from app.main import create_app
from tests.support.api import DEFAULT_PHOTO, Api
from tests.support.servers import free_port, serve_in_thread


async def _count(settings: Settings, model: type[Any]) -> int:
    context = build_context(settings)
    try:
        async with unit_of_work(context.sessions) as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        await close_context(context)


def count(settings: Settings, model: type[Any]) -> int:
    return asyncio.run(_count(settings, model))


def test_ten_retries_with_one_key_make_one_report(api: Api, settings: Settings) -> None:
    headers = api.reporter("alice")
    upload_id = api.upload_id(headers)
    receipts = [api.submit(headers, [upload_id], idempotency_key="submit-1") for _ in range(10)]
    assert {r.status_code for r in receipts} == {201}
    assert len({r.text for r in receipts}) == 1
    assert count(settings, Report) == 1


def test_a_key_reused_with_another_body_is_refused(api: Api) -> None:
    headers = api.reporter("alice")
    upload_id = api.upload_id(headers)
    assert api.submit(headers, [upload_id], idempotency_key="k").status_code == 201
    other = api.submit(headers, [upload_id], idempotency_key="k", description="另一个内容完全不同的描述")
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_keys_are_per_reporter(api: Api) -> None:
    alice, bob = api.reporter("alice"), api.reporter("bob")
    a = api.submit(alice, idempotency_key="same")
    b = api.submit(bob, idempotency_key="same")
    assert a.status_code == b.status_code == 201
    assert a.json()["number"] != b.json()["number"]


def test_an_invalid_key_is_refused(api: Api) -> None:
    headers = api.reporter("alice")
    response = api.submit(headers, idempotency_key="x" * 300)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_idempotency_key"


@pytest.fixture
def live(settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(settings)) as url:
        yield url


def _login(url: str, name: str) -> dict[str, str]:
    token = httpx.post(f"{url}/v1/auth/wechat/login", json={"code": f"code-{name}"}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_ten_concurrent_uploads_of_one_photo_make_one_upload(live: str, settings: Settings) -> None:
    headers = _login(live, "alice")
    data = DEFAULT_PHOTO.read_bytes()

    def upload(_: int) -> httpx.Response:
        return httpx.post(f"{live}/v1/uploads", headers=headers, files={"file": ("p.jpg", data)}, timeout=60)

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(upload, range(10)))
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses if r.status_code != 201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert count(settings, Upload) == 1
    # The losers' copies were removed: only one upload's three objects remain.
    objects = [p for p in (settings.storage.local_root / "uploads").rglob("*") if p.is_file()]
    assert len(objects) == 3


def test_ten_concurrent_submissions_with_one_key_make_one_report(live: str, settings: Settings) -> None:
    headers = _login(live, "alice")
    upload = httpx.post(f"{live}/v1/uploads", headers=headers, files={"file": ("p.jpg", DEFAULT_PHOTO.read_bytes())})
    body = Api.report_body([upload.json()["id"]])

    def submit(_: int) -> httpx.Response:
        return httpx.post(f"{live}/v1/reports", headers={**headers, "Idempotency-Key": "race-1"}, json=body, timeout=60)

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(submit, range(10)))
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.json()["number"] for r in responses}) == 1
    assert count(settings, Report) == 1


def test_a_failure_after_the_insert_leaves_no_half_made_report(
    api: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = api.reporter("alice")
    upload_id = api.upload_id(headers)

    store = intake_service._store

    async def store_then_crash(*args: Any) -> str:
        await store(*args)  # every row of the submission written, before the commit
        raise RuntimeError("simulated crash after the report row was written")

    monkeypatch.setattr(intake_service, "_store", store_then_crash)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = Api(client).submit(headers, [upload_id])
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "simulated" not in response.text
    assert count(settings, Report) == 0
    monkeypatch.undo()
    assert api.submit(headers, [upload_id]).status_code == 201


def test_a_conflict_on_one_photo_attaches_none(api: Api, settings: Settings) -> None:
    headers = api.reporter("alice")
    used = api.upload_id(headers)
    assert api.submit(headers, [used]).status_code == 201
    fresh = api.upload_id(headers, DEFAULT_PHOTO.parent / "DSCN0012.jpg")
    assert api.submit(headers, [fresh, used]).status_code == 409
    assert count(settings, Report) == 1
    assert api.client.get(f"/v1/uploads/{fresh}", headers=headers).json()["attached"] is False


def test_uploads_answer_503_when_the_object_store_is_down(settings: Settings) -> None:
    down = settings.model_copy(
        update={"storage": StorageSettings(backend="s3", s3_endpoint=f"127.0.0.1:{free_port()}")}
    )
    with TestClient(create_app(down)) as client:
        api = Api(client)
        response = api.upload(api.reporter("alice"))
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "storage_unavailable"
        assert response.headers.get("retry-after")
        assert client.get("/readyz").status_code == 503
    assert count(settings, Upload) == 0


def test_a_failed_object_write_leaves_no_row_and_no_objects(
    api: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = api.client.app.state.context.storage  # type: ignore[attr-defined]
    real_put = storage.put

    async def failing_put(key: str, data: bytes, content_type: str) -> None:
        if key.endswith("thumbnail.jpg"):
            from app.storage.base import StorageUnavailable

            raise StorageUnavailable()
        await real_put(key, data, content_type)

    monkeypatch.setattr(storage, "put", failing_put)
    response = api.upload(api.reporter("alice"))
    assert response.status_code == 503
    assert count(settings, Upload) == 0
    assert not [p for p in (settings.storage.local_root / "uploads").rglob("*") if p.is_file()]
