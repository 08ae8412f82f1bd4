"""Faults, the short version of ``bench/faults.py`` (``make evidence-faults`` runs the long one): a live API process
is killed with SIGKILL three times and its S3 endpoint stopped while reporters upload and submit, and staff drive
a case to payment, every client retrying with its Idempotency-Key. Afterwards every acknowledged report exists
exactly once, the one payment is there once, no upload row points at a missing object, and cleanup removes the
orphaned objects and nothing else. Runs on SQLite and PostgreSQL alike; it stops no database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.core.config import Settings, StorageSettings
from app.core.context import AppContext, build_context, close_context
from app.core.db import unit_of_work
from app.demo.seed import DEMO_STAFF
from app.intake.maintenance import cleanup
from app.intake.models import Report, Upload
from app.rewards.models import RewardPayment
from tests.support.api import PHOTO_DIR
from tests.support.servers import free_port

pytestmark = pytest.mark.slow

REPORTERS = 3
KILLS = 3
PHOTOS = sorted((PHOTO_DIR / "jpg" / "gps").glob("*.jpg"))
BODY = {
    "category": "hazardous_chemicals",
    "hazard_kind": "accident_hazard",
    "location": {"longitude": 113.405, "latitude": 24.186, "datum": "gcj02"},
    "observed_at": "2026-11-20T09:30:00+08:00",
}
PAYEE = {
    "real_name": "王小明",
    "id_number": "11010519491231002X",
    "bank_name": "中国农业银行英德支行",
    "account_number": "6228480012345678901",
}
VERIFIED = {"outcome": "true", "hazard_level": "major", "penalty_fen": 10_000_000, "findings": "现场查实"}
DEADLINE_SECONDS = 90  # no single command may keep failing longer than this


class LiveApi:
    """``uvicorn --factory app.main:create_app`` in a process of its own, on one port, that we can kill -9."""

    def __init__(self, environment: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.environment = {**os.environ, **environment, "HAZARD_PUBLIC_BASE_URL": self.url}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--log-level", "warning"], env=self.environment, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    async def healthy(self) -> None:
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]
                try:
                    if (await client.get(f"{self.url}/healthz", timeout=1)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.url} did not start: {self.log.read_text()[-3000:]}")


class S3Endpoint:
    """moto's S3 server in this process. Stopping it refuses connections like a dead endpoint, and its objects
    survive (they live in moto's in-process backends, not in the server), so it comes back on the same port with
    them."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: Any = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()


class Clients:
    """What the clients saw: answers by status, retries, and what was acknowledged."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.outcomes: Counter[str] = Counter()
        self.retries = 0
        self.acknowledged: dict[str, dict[str, Any]] = {}  # idempotency key → receipt
        self.attempted: set[str] = set()
        self.payments: list[dict[str, Any]] = []

    async def call(self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Retried, the same request, on connection errors and 5xx, as the mini-program does."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            try:
                response = await client.request(method, self.url + path, timeout=15, **kwargs)
            except httpx.HTTPError as exc:
                self.outcomes[type(exc).__name__] += 1
            else:
                code = response.json()["error"]["code"] if response.status_code >= 400 else ""
                self.outcomes[f"{response.status_code} {code}".strip()] += 1
                if response.status_code < 500:
                    return response
            assert time.monotonic() < deadline, f"{method} {path} kept failing: {self.outcomes}"
            self.retries += 1
            await asyncio.sleep(0.2)

    async def ok(self, client: httpx.AsyncClient, status: int, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.call(client, method, path, **kwargs)
        assert response.status_code == status, response.text
        return response.json()


async def _report(clients: Clients, client: httpx.AsyncClient, headers: dict[str, str], n: int) -> dict[str, Any]:
    photo = PHOTOS[n % len(PHOTOS)].read_bytes() + uuid.uuid4().bytes  # after the JPEG's end: a new file
    upload = await clients.ok(
        client,
        201,
        "POST",
        "/v1/uploads",
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        files={"file": ("photo.jpg", photo, "image/jpeg")},
    )
    key = uuid.uuid4().hex
    clients.attempted.add(key)
    body = {**BODY, "description": f"危化品仓库消防通道堵塞 {key}", "upload_ids": [upload["id"]]}
    receipt = await clients.ok(
        client, 201, "POST", "/v1/reports", headers={**headers, "Idempotency-Key": key}, json=body
    )
    clients.acknowledged[key] = receipt
    return dict(receipt)


async def _reporter(clients: Clients, name: str, stop: asyncio.Event, cases: asyncio.Queue[Any]) -> None:
    async with httpx.AsyncClient() as client:
        login = await clients.ok(client, 200, "POST", "/v1/auth/wechat/login", json={"code": f"dev:{name}"})
        headers = {"Authorization": f"Bearer {login['access_token']}"}
        n = 0
        while not stop.is_set():
            receipt = await _report(clients, client, headers, n)
            if n == 0:
                cases.put_nowait((receipt, headers))
            n += 1


async def _pay_one_case(clients: Clients, cases: asyncio.Queue[Any]) -> None:
    """The workflow to verified true, then confirm → approve → claim → pay, each with its own key, retried."""
    receipt, reporter = await cases.get()
    async with httpx.AsyncClient() as client:
        staff = {}
        for member in DEMO_STAFF:
            if member.username in ("dispatcher", "inspector", "head", "auditor", "payer"):
                body = {"username": member.username, "password": member.password}
                token = await clients.ok(client, 200, "POST", "/v1/auth/staff/login", json=body)
                staff[member.username] = {"Authorization": f"Bearer {token['access_token']}"}
        case = f"/v1/staff/cases/{receipt['id']}"
        steps = {
            "submitted": ("dispatcher", "accept", {}),
            "accepted": ("dispatcher", "assign", {"department_code": "441881-emergency"}),
            "assigned": ("inspector", "start-verification", {}),
            "verifying": ("inspector", "verify", VERIFIED),
        }
        while (state := (await clients.ok(client, 200, "GET", case, headers=staff["dispatcher"]))["state"]) in steps:
            who, command, body = steps[state]
            # No key on workflow commands: a retry whose first try committed is refused 409, and the state re-read.
            await clients.call(client, "POST", f"{case}/{command}", headers=staff[who], json=body)
        assert state == "verified_true"
        [reward] = await clients.ok(client, 200, "GET", "/v1/me/rewards", headers=reporter)
        rid = reward["id"]
        payment = {"channel": "bank_transfer", "reference": "FAULTS0001", "paid_on": "2026-11-27"}
        for who, path, body in (
            ("head", f"/v1/staff/rewards/{rid}/confirm", {}),
            ("auditor", f"/v1/staff/rewards/{rid}/approve", {"note": "符合政策"}),
            ("reporter", f"/v1/me/rewards/{rid}/claim", PAYEE),
            ("payer", f"/v1/staff/rewards/{rid}/pay", payment),
        ):
            headers = {**(reporter if who == "reporter" else staff[who]), "Idempotency-Key": uuid.uuid4().hex}
            answer = await clients.ok(client, 200, "POST", path, headers=headers, json=body)
        # The answer to the payment is lost, say: the retry with its key gets the same answer, not a second payment.
        again = await clients.ok(client, 200, "POST", path, headers=headers, json=body)
        assert again == answer and answer["state"] == "paid"
        clients.payments.append({"reward_id": rid, "answer": answer})


async def _faults(api: LiveApi, s3: S3Endpoint, clients: Clients, stop: asyncio.Event) -> None:
    for _ in range(KILLS):
        await asyncio.sleep(1.5)
        api.kill()
        api.start()
        await api.healthy()
    # S3 goes away: an upload is refused 503 in the error shape while it is gone, and the process stays up.
    s3.stop()
    async with httpx.AsyncClient() as client:
        login = await clients.ok(client, 200, "POST", "/v1/auth/wechat/login", json={"code": "dev:outage"})
        refused = await client.post(
            f"{api.url}/v1/uploads",
            headers={"Authorization": f"Bearer {login['access_token']}"},
            files={"file": ("photo.jpg", PHOTOS[0].read_bytes(), "image/jpeg")},
            timeout=30,
        )
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "storage_unavailable"
    await asyncio.sleep(1.0)
    s3.start()
    await asyncio.sleep(1.0)
    stop.set()


async def _drive(api: LiveApi, s3: S3Endpoint, clients: Clients) -> None:
    stop = asyncio.Event()
    cases: asyncio.Queue[Any] = asyncio.Queue()
    load = [asyncio.create_task(_reporter(clients, f"faults{i}", stop, cases)) for i in range(REPORTERS)]
    payer = asyncio.create_task(_pay_one_case(clients, cases))
    await _faults(api, s3, clients, stop)
    await asyncio.gather(*load, payer)


async def _stored(context: AppContext) -> tuple[dict[str, list[Any]], dict[str, str], list[Any]]:
    async with unit_of_work(context.sessions) as session:
        reports = (await session.execute(select(Report.id, Report.number, Report.description))).all()
        uploads = (
            await session.execute(select(Upload.id, Upload.original_key, Upload.display_key, Upload.thumbnail_key))
        ).all()
        payments = (
            await session.execute(
                select(RewardPayment.reward_id, func.count())
                .where(RewardPayment.status == "succeeded")
                .group_by(RewardPayment.reward_id)
            )
        ).all()
    by_key: dict[str, list[Any]] = {}
    for report in reports:
        by_key.setdefault(report.description.rsplit(" ", 1)[-1], []).append(report)
    objects = {key: str(u.id) for u in uploads for key in (u.original_key, u.display_key, u.thumbnail_key)}
    return by_key, objects, payments


async def _check_and_clean(settings: Settings, clients: Clients) -> dict[str, int]:
    context = build_context(settings)
    try:
        by_key, referenced, payments = await _stored(context)
        for key, receipt in clients.acknowledged.items():
            assert [(str(r.id), r.number) for r in by_key.get(key, [])] == [(receipt["id"], receipt["number"])]
        assert all(len(rows) == 1 for rows in by_key.values()), "a key made two reports"
        assert set(by_key) <= clients.attempted
        [payment] = clients.payments
        assert [(str(reward_id), count) for reward_id, count in payments] == [(payment["reward_id"], 1)]

        stored = {o.key for o in await context.storage.list("uploads/")}
        assert set(referenced) <= stored, "an upload row points at a missing object"
        orphans = stored - set(referenced)
        if not orphans:  # the kills may have landed where no object was written yet: plant one
            planted = f"uploads/{uuid.uuid4()}/original.jpeg"
            await context.storage.put(planted, b"orphan", "image/jpeg")
            orphans = {planted}
        result = await cleanup(context, orphan_grace=timedelta(0))
        left = {o.key for o in await context.storage.list("uploads/")}
        assert result.orphan_objects_removed == len(orphans)
        assert left == set(referenced), "cleanup left an orphan or removed a referenced object"
        return {"reports": sum(map(len, by_key.values())), "orphans": len(orphans)}
    finally:
        await close_context(context)


def test_kills_and_an_s3_outage_lose_no_acknowledged_report_and_double_no_payment(
    settings: Settings, tmp_path: Path
) -> None:
    s3 = S3Endpoint()
    s3.start()
    storage = StorageSettings(
        backend="s3",
        s3_endpoint=f"127.0.0.1:{s3.port}",
        s3_access_key="testing",
        s3_secret_key="testing",
        s3_bucket=f"faults-{uuid.uuid4().hex[:12]}",
    )
    settings = settings.model_copy(update={"storage": storage})
    environment = {
        "HAZARD_ENVIRONMENT": "test",
        "HAZARD_LOG_LEVEL": "WARNING",
        "HAZARD_EMBEDDED_WORKER": "false",
        "HAZARD_WECHAT__DEV_LOGIN": "true",
        "HAZARD_DATABASE__URL": settings.database.url,
        "HAZARD_STORAGE__BACKEND": "s3",
        "HAZARD_STORAGE__S3_ENDPOINT": storage.s3_endpoint,
        "HAZARD_STORAGE__S3_ACCESS_KEY": storage.s3_access_key,
        "HAZARD_STORAGE__S3_SECRET_KEY": storage.s3_secret_key,
        "HAZARD_STORAGE__S3_BUCKET": storage.s3_bucket,
    }
    api = LiveApi(environment, tmp_path / "api.log")
    clients = Clients(api.url)
    try:
        api.start()
        asyncio.run(api.healthy())
        asyncio.run(_drive(api, s3, clients))
    finally:
        api.stop()
    stored = asyncio.run(_check_and_clean(settings, clients))
    s3.stop()

    assert clients.retries > 0 and stored["reports"] >= len(clients.acknowledged) > 0
    assert not [outcome for outcome in clients.outcomes if outcome.startswith("500")], clients.outcomes
