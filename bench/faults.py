"""Faults and scale-out: kill -9 API processes, stop PostgreSQL and S3 under mixed load, then check the books.

Run from the repository root (``make evidence-faults``):

    .venv/bin/python bench/faults.py                      # 180 s of load, 20 kills, one PostgreSQL and one S3 outage
    .venv/bin/python bench/faults.py --duration 40 --kills 5 --outage-seconds 4     # a short run

What it does, all on loopback, as root (the private PostgreSQL runs as the ``postgres`` OS user):

1. a private PostgreSQL 15 cluster (``initdb`` in a temporary directory, ``pg_ctl`` on a free port: the shared server
   on 5432 is never touched), a moto S3 server behind a TCP proxy of ours, and a fake WeChat that counts sends;
2. ``python -m app.cli migrate`` and ``seed-demo``, then TWO uvicorn API processes (ports A and B,
   ``HAZARD_EMBEDDED_WORKER=false``) and TWO ``python -m app.cli worker`` processes, all on that one database and
   that one bucket;
3. load from client processes: reporters opt in to messages, upload real photos (``../shared/data/photos``, a
   unique trailer after the JPEG's end so each is a new upload) and submit reports with an ``Idempotency-Key``,
   retrying the same key and body on connection errors and 5xx, alternating between the two APIs; staff drive
   every third acknowledged case to verified true and its reward through confirm → approve → claim (the
   reporter) → pay, every money command with its own key retried as it is;
4. meanwhile: ``kill -9`` an API process ``--kills`` times (alternately, restarted at once), PostgreSQL stopped once
   with ``pg_ctl stop -m immediate`` and started again, S3 made unreachable once;
5. afterwards, with the load stopped: every acknowledged report exists exactly once with its number; no key made
   two reports; no reward has two live payments and every reward's ledger agrees with its payments; every
   acknowledged payment is there once; no upload row names a missing object; ``python -m app.cli cleanup``
   removes the orphaned objects (planting three if the run left none) and nothing referenced; the fake WeChat
   got each message once (sends = outbox rows sent, no content twice); both workers claimed messages; no answer
   was a 500; every API restart answered again and both workers are still running.

Why S3 is cut at a proxy: moto keeps objects in memory, so killing it would lose every object and make "no row
points at a missing object" fail for a reason that is no bug of ours; it has no persistence. The proxy closes
its listening socket and resets every open connection, so the API sees exactly what a dead S3 endpoint gives
(connection refused, then reset), and the objects are still there when it listens again. ``--s3-outage pause``
instead freezes moto with SIGSTOP (a hung endpoint: connections open, no answer, the client's read timeout).

Each check is printed PASS or FAIL; the exit status is 1 if any failed. A JSON copy of everything goes to
``bench/results/faults-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PHOTO_DIR = ROOT.parent / "shared" / "data" / "photos" / "jpg"
PHOTOS = sorted((PHOTO_DIR / "gps").glob("*.jpg")) + sorted((PHOTO_DIR / "orientation").glob("*.jpg"))
BUCKET = "hazard-evidence"
S3_KEYS = ("faults-access", "faults-secret")
WECHAT_APP = ("wx-faults", "faults-app-secret")
TEMPLATES = {"accepted": "tmpl-accepted", "progress": "tmpl-progress", "result": "tmpl-result", "reward": "tmpl-reward"}
LOCATION = {"longitude": 113.405, "latitude": 24.186, "datum": "gcj02", "accuracy_m": 15.0, "address": "英德市英城街道"}
DEPARTMENT = "441881-emergency"
PAYEE = {
    "real_name": "王小明",
    "id_number": "11010519491231002X",
    "bank_name": "中国农业银行英德支行",
    "account_number": "6228480012345678901",
}
START_SECONDS = 60
STOP_GRACE_SECONDS = 20


class BenchError(RuntimeError):
    """A failure that ends the run with a message instead of a traceback."""


def step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- the private PostgreSQL cluster -------------------------------------------------------------------------------


class PrivatePostgres:
    """A cluster of our own, so that stopping it stops nobody else's tests."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "pg"
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/hazard"

    def _as_postgres(self, *command: str, timeout: float = 120) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise BenchError(f"{command[0]} failed: {done.stderr.strip() or done.stdout.strip()}\n{tail(self.log)}")

    def create(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise BenchError(f"{PG_BIN}/initdb not found: PostgreSQL 15 server binaries are needed")
        self.dir.mkdir(parents=True)
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"
        )
        self.start()
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG_BIN / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-q",
                "-c",
                "CREATE DATABASE hazard",
            ],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start"
        )

    def stop_immediately(self) -> None:
        """What a crash looks like to the clients: every connection dropped, no shutdown checkpoint."""
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


# --- S3: moto behind a proxy we can cut ---------------------------------------------------------------------------


class CuttableProxy:
    """A TCP proxy in the orchestrator's event loop. ``cut`` stops listening and resets every connection (what a
    dead endpoint gives a client); ``restore`` listens again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()
        await self._server.wait_closed()
        self._server = None

    async def restore(self) -> None:
        await self.start()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer.transport, upstream_writer.transport}
        self._transports |= pair  # type: ignore[arg-type]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    sink.close()

        try:
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        finally:
            self._transports -= pair  # type: ignore[arg-type]


# --- the fake WeChat: access tokens and subscription messages, counted ---------------------------------------------


def fake_wechat_app(sent: list[dict[str, Any]]) -> Any:
    """WeChat's token and subscription-message endpoints, accepting every message and keeping it in ``sent``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    lock = threading.Lock()

    async def token(_request: Request) -> JSONResponse:
        return JSONResponse({"access_token": f"FAKE-{uuid.uuid4().hex}", "expires_in": 7200})

    async def send(request: Request) -> JSONResponse:
        body = await request.json()
        with lock:
            sent.append(body)
            return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": len(sent)})

    return Starlette(
        routes=[
            Route("/cgi-bin/token", token, methods=["GET"]),
            Route("/cgi-bin/message/subscribe/send", send, methods=["POST"]),
        ]
    )


def serve_in_thread(app: Any) -> tuple[Any, str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise BenchError("the fake WeChat did not start")
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port}"


# --- the fleet: two APIs, two workers -------------------------------------------------------------------------------


@dataclass
class Fleet:
    env: dict[str, str]
    logdir: Path
    api_ports: list[int]
    apis: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    api_starts: list[int] = field(default_factory=list)

    @property
    def base_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.api_ports]

    def cli(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise BenchError(f"app.cli {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout

    def start_api(self, index: int) -> None:
        port = self.api_ports[index]
        command = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
        env = {**self.env, "HAZARD_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
        with (self.logdir / f"api-{index}.log").open("ab") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        while len(self.apis) <= index:
            self.apis.append(None)
            self.api_starts.append(0)
        self.apis[index] = process
        self.api_starts[index] += 1

    def kill_api(self, index: int) -> None:
        process = self.apis[index]
        assert process is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def start_workers(self, count: int) -> None:
        for index in range(count):
            with (self.logdir / f"worker-{index}.log").open("ab") as log:
                self.workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "app.cli", "worker"],
                        cwd=ROOT,
                        # INFO: each pass logs what it claimed, which shows both workers took messages.
                        env={**self.env, "HAZARD_LOG_LEVEL": "INFO"},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )

    def stop(self) -> None:
        processes = [p for p in [*self.apis, *self.workers] if p is not None and p.poll() is None]
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


async def wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> float:
    """Seconds until /healthz answers (the process is up; readiness may wait on an outage)."""
    import httpx

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while time.monotonic() - started < seconds:
            if process.poll() is not None:
                raise BenchError(f"{base_url} exited with {process.returncode}:\n{tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/healthz")).status_code == 200:
                    return time.monotonic() - started
            await asyncio.sleep(0.1)
    raise BenchError(f"{base_url} did not answer /healthz within {seconds:.0f} s:\n{tail(log)}")


# --- the load (client processes) -----------------------------------------------------------------------------------


@dataclass
class LoadSpec:
    index: int
    base_urls: list[str]
    reporters: int
    staff: int
    drive_every: int
    staff_passwords: dict[str, str]
    load_seconds: float
    grace_seconds: float
    seed: int


def client_process(conn: Any, stop: Any, spec: LoadSpec) -> None:
    """A load client: starts new work until ``stop`` (a multiprocessing Event) is set or ``load_seconds`` pass,
    then retries what it has in flight for at most ``grace_seconds`` more."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        result = asyncio.run(LoadClient(spec, stop).run())
        conn.send(("result", result))
    except BaseException as exc:
        import traceback

        with contextlib.suppress(Exception):
            conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-2000:]}"))
    finally:
        conn.close()


class Abandoned(Exception):
    """A request kept failing until the run's hard deadline."""


class LoadClient:
    def __init__(self, spec: LoadSpec, stop: Any) -> None:
        self.spec = spec
        self.stop = stop
        self.stopped_by = "cap"  # "orchestrator" when the load ran until after the last fault, as it should
        self.random = random.Random(spec.seed)
        self.turn = spec.index
        self.statuses: Counter[str] = Counter()  # "<route> <status or exception>"
        self.error_samples: dict[str, str] = {}
        self.requests = 0
        self.retries = 0
        self.submissions: list[dict[str, Any]] = []
        self.payments: list[dict[str, Any]] = []
        self.drives: Counter[str] = Counter()
        self.cases: asyncio.Queue[tuple[dict[str, Any], dict[str, str]]] = asyncio.Queue()
        self.photos = [path.read_bytes() for path in PHOTOS]

    async def run(self) -> dict[str, Any]:
        import httpx

        started = time.monotonic()
        self.load_end = started + self.spec.load_seconds
        self.hard_end = self.load_end + self.spec.grace_seconds
        timeout = httpx.Timeout(20.0, connect=3.0)
        watcher = asyncio.create_task(self.watch_stop())
        async with httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=64)) as self.http:
            reporters = [self.reporter(i) for i in range(self.spec.reporters)]
            staff = [self.staff() for _ in range(self.spec.staff)]
            await asyncio.gather(*reporters, *staff)
        watcher.cancel()
        return {
            "requests": self.requests,
            "retries": self.retries,
            "statuses": dict(self.statuses),
            "error_samples": self.error_samples,
            "submissions": self.submissions,
            "payments": self.payments,
            "drives": dict(self.drives),
            "elapsed": time.monotonic() - started,
            "stopped_by": self.stopped_by,
        }

    async def watch_stop(self) -> None:
        while time.monotonic() < self.load_end:
            if self.stop.is_set():
                self.stopped_by = "orchestrator"
                self.load_end = time.monotonic()
                self.hard_end = self.load_end + self.spec.grace_seconds
                return
            await asyncio.sleep(0.2)

    async def call(self, route: str, method: str, path: str, **kwargs: Any) -> Any:
        """One command, retried (the same key, the same body) on connection errors and 5xx until the hard deadline;
        each try goes to the next API process."""
        import httpx

        delay = 0.2
        first = True
        while True:
            if not first:
                self.retries += 1
            first = False
            base = self.spec.base_urls[self.turn % len(self.spec.base_urls)]
            self.turn += 1
            self.requests += 1
            try:
                response = await self.http.request(method, base + path, **kwargs)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
                self.error_samples.setdefault(f"{route} {outcome}", str(exc)[:300])
            else:
                outcome = str(response.status_code)
                if response.status_code >= 500:
                    outcome = f"{response.status_code} {_error_code(response)}"
                    self.error_samples.setdefault(f"{route} {outcome}", response.text[:300])
                self.statuses[f"{route} {outcome}"] += 1
                if response.status_code < 500:
                    return response
                delay = min(2.0, delay * 1.5)
                await self._pause(delay)
                continue
            self.statuses[f"{route} {outcome}"] += 1
            delay = min(2.0, delay * 1.5)
            await self._pause(delay)

    async def _pause(self, delay: float) -> None:
        if time.monotonic() + delay > self.hard_end:
            raise Abandoned()
        await asyncio.sleep(delay * (0.5 + self.random.random()))

    async def expect(self, status: int, route: str, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.call(route, method, path, **kwargs)
        if response.status_code != status:
            self.error_samples.setdefault(f"{route} unexpected {response.status_code}", response.text[:300])
            raise Abandoned()
        return response.json()

    # -- reporters --

    async def reporter(self, number: int) -> None:
        name = f"f{self.spec.index}r{number}-{uuid.uuid4().hex[:6]}"
        try:
            login = await self.expect(200, "login", "POST", "/v1/auth/wechat/login", json={"code": f"dev:{name}"})
        except Abandoned:
            return
        headers = {"Authorization": f"Bearer {login['access_token']}"}
        while time.monotonic() < self.load_end:
            try:
                await self.one_report(headers)
            except Abandoned:
                return

    async def one_report(self, headers: dict[str, str]) -> None:
        asked = ["accepted", "result", "reward"]
        await self.expect(
            200, "opt-in", "POST", "/v1/me/subscriptions", headers=headers, json={"asked": asked, "accepted": asked}
        )
        photo = self.random.choice(self.photos) + b"faults" + uuid.uuid4().bytes  # after the JPEG's end: a new file
        upload_key = uuid.uuid4().hex
        upload = await self.expect(
            201,
            "upload",
            "POST",
            "/v1/uploads",
            headers={**headers, "Idempotency-Key": upload_key},
            files={"file": ("photo.jpg", photo, "image/jpeg")},
            data={"purpose": "report"},
        )
        key = uuid.uuid4().hex
        body = {
            "category": "hazardous_chemicals",
            "hazard_kind": "accident_hazard",
            "description": f"仓库危化品堆放在消防通道，编号 {key}",
            "location": {
                **LOCATION,
                "longitude": LOCATION["longitude"] + self.random.uniform(-0.05, 0.05),
                "latitude": LOCATION["latitude"] + self.random.uniform(-0.05, 0.05),
            },
            "observed_at": "2026-11-20T09:30:00+08:00",
            "upload_ids": [upload["id"]],
        }
        record: dict[str, Any] = {"key": key, "upload_id": upload["id"], "acknowledged": False, "tries": 0}
        self.submissions.append(record)
        retries_before = self.retries
        try:
            response = await self.call(
                "submit", "POST", "/v1/reports", headers={**headers, "Idempotency-Key": key}, json=body
            )
        finally:
            record["tries"] = 1 + self.retries - retries_before
        if response.status_code != 201:
            record["refused"] = f"{response.status_code} {response.text[:200]}"
            return
        receipt = response.json()
        record.update(acknowledged=True, id=receipt["id"], number=receipt["number"])
        if len(self.submissions) % self.spec.drive_every == 0:
            self.cases.put_nowait((record, headers))

    # -- staff --

    async def staff(self) -> None:
        try:
            tokens = {name: await self.staff_login(name) for name in ("dispatcher", "inspector", "head", "auditor")}
            tokens["payer"] = await self.staff_login("payer")
        except Abandoned:
            return
        # No new case after the load stops; the one in hand is finished (retrying until the hard end if need be).
        while time.monotonic() < self.load_end:
            try:
                record, reporter = await asyncio.wait_for(self.cases.get(), timeout=1.0)
            except TimeoutError:
                continue
            try:
                await self.drive(record, reporter, tokens)
            except Abandoned:
                self.drives["abandoned"] += 1

    async def staff_login(self, username: str) -> dict[str, str]:
        body = {"username": username, "password": self.spec.staff_passwords[username]}
        token = await self.expect(200, "staff-login", "POST", "/v1/auth/staff/login", json=body)
        return {"Authorization": f"Bearer {token['access_token']}"}

    async def drive(self, record: dict[str, Any], reporter: dict[str, str], tokens: dict[str, dict[str, str]]) -> None:
        case = f"/v1/staff/cases/{record['id']}"
        steps = {
            "submitted": ("dispatcher", "accept", {}),
            "accepted": ("dispatcher", "assign", {"department_code": DEPARTMENT}),
            "assigned": ("inspector", "start-verification", {}),
            "verifying": (
                "inspector",
                "verify",
                {"outcome": "true", "hazard_level": "major", "penalty_fen": 10_000_000, "findings": "现场查实"},
            ),
        }
        for _ in range(12):
            state = (await self.expect(200, "case", "GET", case, headers=tokens["dispatcher"]))["state"]
            if state == "verified_true":
                break
            if state not in steps:
                self.error_samples.setdefault(f"drive state {state}", record["id"])
                raise Abandoned()
            who, command, body = steps[state]
            # Workflow commands carry no key: a retry after a lost answer is refused 409 and the state re-read.
            await self.call(command, "POST", f"{case}/{command}", headers=tokens[who], json=body)
        else:
            raise Abandoned()
        self.drives["verified"] += 1
        mine = await self.expect(200, "my-rewards", "GET", "/v1/me/rewards", headers=reporter)
        reward = next((r for r in mine if r["report_number"] == record["number"]), None)
        if reward is None:
            self.error_samples.setdefault("no reward proposed", record["number"])
            raise Abandoned()
        rid = reward["id"]
        payment: dict[str, Any] = {"reward_id": rid, "report_number": record["number"], "acknowledged": False}
        self.payments.append(payment)
        for who, command, body in (
            ("head", "confirm", {}),
            ("auditor", "approve", {"note": "符合政策"}),
            ("reporter", "claim", PAYEE),
            (
                "payer",
                "pay",
                {"channel": "bank_transfer", "reference": f"FLT{uuid.uuid4().hex[:12]}", "paid_on": "2026-11-27"},
            ),
        ):
            key = uuid.uuid4().hex
            if who == "reporter":
                path, headers = f"/v1/me/rewards/{rid}/claim", reporter
            else:
                path, headers = f"/v1/staff/rewards/{rid}/{command}", tokens[who]
            answer = await self.expect(
                200, f"reward-{command}", "POST", path, headers={**headers, "Idempotency-Key": key}, json=body
            )
            payment[command] = answer["state"]
            if command == "pay":
                payment.update(acknowledged=True, pay_key=key, reference=body["reference"])
        self.drives["paid"] += 1


def _error_code(response: Any) -> str:
    try:
        return str(response.json()["error"]["code"])
    except Exception:
        return "-"


# --- the fault schedule --------------------------------------------------------------------------------------------


async def run_faults(
    args: argparse.Namespace, fleet: Fleet, postgres: PrivatePostgres, proxy: CuttableProxy, moto: Any
) -> dict[str, Any]:
    """Kills at even intervals over the load, the PostgreSQL outage at 35 % and the S3 outage at 65 % of it."""
    started = time.monotonic()
    events: list[tuple[float, str, Any]] = []
    span = args.duration * 0.9
    for i in range(args.kills):
        events.append((args.duration * 0.05 + span * i / max(1, args.kills), "kill", i % 2))
    if args.outage_seconds > 0:
        events.append((args.duration * 0.35, "postgres", None))
        events.append((args.duration * 0.65, "s3", None))
    events.sort(key=lambda e: e[0])
    log: dict[str, Any] = {"kills": [], "outages": []}

    async def at(offset: float) -> None:
        await asyncio.sleep(max(0.0, started + offset - time.monotonic()))

    for offset, kind, index in events:
        await at(offset)
        if kind == "kill":
            t0 = time.monotonic()
            await asyncio.to_thread(fleet.kill_api, index)
            fleet.start_api(index)
            log_path = fleet.logdir / f"api-{index}.log"
            up = await wait_ready(fleet.base_urls[index], fleet.apis[index], log_path, args.restart_timeout)
            log["kills"].append({"at_s": round(t0 - started, 1), "api": index, "back_in_s": round(up, 2)})
            step(f"kill -9 API {index} ({len(log['kills'])}/{args.kills}), answering again in {up:.1f} s")
        elif kind == "postgres":
            t0 = time.monotonic()
            await asyncio.to_thread(postgres.stop_immediately)
            step(f"PostgreSQL stopped (pg_ctl stop -m immediate) for {args.outage_seconds:g} s")
            await asyncio.sleep(args.outage_seconds)
            await asyncio.to_thread(postgres.start)
            down = time.monotonic() - t0
            log["outages"].append({"what": "postgres", "at_s": round(t0 - started, 1), "down_s": round(down, 2)})
            step(f"PostgreSQL back after {down:.1f} s")
        else:
            t0 = time.monotonic()
            if args.s3_outage == "refuse":
                await proxy.cut()
            else:
                os.kill(moto.pid, signal.SIGSTOP)
            step(f"S3 {'cut at the proxy' if args.s3_outage == 'refuse' else 'paused'} for {args.outage_seconds:g} s")
            await asyncio.sleep(args.outage_seconds)
            if args.s3_outage == "refuse":
                await proxy.restore()
            else:
                os.kill(moto.pid, signal.SIGCONT)
            down = time.monotonic() - t0
            log["outages"].append(
                {"what": f"s3 ({args.s3_outage})", "at_s": round(t0 - started, 1), "down_s": round(down, 2)}
            )
            step(f"S3 back after {down:.1f} s")
    return log


# --- the checks ----------------------------------------------------------------------------------------------------


class Checks:
    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.results.append({"check": name, "ok": bool(ok), "detail": detail})
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)

    @property
    def failed(self) -> int:
        return sum(not r["ok"] for r in self.results)


async def fetch(database_url: str, query: str, *params: Any) -> list[Any]:
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"), timeout=10)
    try:
        return list(await connection.fetch(query, *params))
    finally:
        await connection.close()


def s3_client(port: int) -> Any:
    from minio import Minio

    return Minio(f"127.0.0.1:{port}", access_key=S3_KEYS[0], secret_key=S3_KEYS[1], secure=False)


def bucket_keys(client: Any) -> set[str]:
    return {o.object_name for o in client.list_objects(BUCKET, recursive=True)}


def upload_objects(rows: list[Any]) -> dict[str, str]:
    keys = ("original_key", "display_key", "thumbnail_key")
    return {row[key]: str(row["id"]) for row in rows for key in keys}


def check_reports(checks: Checks, database_url: str, submissions: list[dict[str, Any]]) -> dict[str, Any]:
    rows = asyncio.run(fetch(database_url, "SELECT id, number, description FROM reports"))
    by_key: dict[str, list[Any]] = {}
    for row in rows:
        key = row["description"].rsplit(" ", 1)[-1]
        by_key.setdefault(key, []).append(row)
    acknowledged = [s for s in submissions if s["acknowledged"]]
    missing = [s["key"] for s in acknowledged if s["key"] not in by_key]
    wrong = [
        s["key"]
        for s in acknowledged
        if s["key"] in by_key
        and (str(by_key[s["key"]][0]["id"]) != s["id"] or by_key[s["key"]][0]["number"] != s["number"])
    ]
    doubled = {k: len(v) for k, v in by_key.items() if len(v) > 1}
    attempted = {s["key"] for s in submissions}
    unknown = [k for k in by_key if k not in attempted]
    numbers = [s["number"] for s in acknowledged]
    unacknowledged = [s for s in submissions if not s["acknowledged"]]
    stored_unacknowledged = sum(1 for s in unacknowledged if s["key"] in by_key)
    checks.check(
        "every acknowledged report exists, with its id and number",
        not missing and not wrong,
        f"{len(acknowledged)} acknowledged, {len(missing)} missing, {len(wrong)} with another id or number",
    )
    checks.check(
        "no report twice (per idempotency key, per acknowledged number)",
        not doubled and len(numbers) == len(set(numbers)) and not unknown,
        f"{len(rows)} reports for {len(attempted)} keys; {len(doubled)} keys with more than one report; "
        f"{len(numbers) - len(set(numbers))} repeated numbers; {len(unknown)} reports of no key",
    )
    return {
        "reports": len(rows),
        "keys": len(attempted),
        "acknowledged": len(acknowledged),
        "unacknowledged": len(unacknowledged),
        "unacknowledged_but_stored": stored_unacknowledged,
    }


def check_money(checks: Checks, database_url: str, payments: list[dict[str, Any]]) -> dict[str, Any]:
    live = asyncio.run(
        fetch(
            database_url,
            "SELECT reward_id, count(*) AS n, sum(amount_fen) AS fen FROM reward_payments "
            "WHERE status = 'succeeded' GROUP BY reward_id",
        )
    )
    doubled = [str(r["reward_id"]) for r in live if r["n"] > 1]
    ledger = asyncio.run(
        fetch(
            database_url,
            "SELECT r.id, r.state, r.approved_fen, "
            "coalesce(sum(l.amount_fen) FILTER (WHERE l.account = 'approved'), 0) AS approved, "
            "coalesce(sum(l.amount_fen) FILTER (WHERE l.account = 'paid'), 0) AS paid, "
            "count(l.id) AS rows, r.ledger_count "
            "FROM rewards r LEFT JOIN reward_ledger l ON l.reward_id = r.id GROUP BY r.id",
        )
    )
    live_fen = {str(r["reward_id"]): int(r["fen"]) for r in live}
    disagree = []
    for row in ledger:
        rid = str(row["id"])
        paid, approved = int(row["paid"]), int(row["approved"])
        expected_paid = live_fen.get(rid, 0)
        decided = row["state"] in ("approved", "claimed", "paid")
        approved_ok = approved == (row["approved_fen"] or 0) if decided else True
        if paid != expected_paid or paid > approved or not approved_ok or row["rows"] != row["ledger_count"]:
            disagree.append(rid)
        if (row["state"] == "paid") != (rid in live_fen):
            disagree.append(rid)
    checks.check(
        "no reward has more than one live payment",
        not doubled,
        f"{len(live)} rewards paid, {len(doubled)} with two or more live payments",
    )
    checks.check(
        "every reward's ledger agrees with its state and payments",
        not disagree,
        f"{len(ledger)} rewards; {len(set(disagree))} disagree (paid = live payments ≤ approved = approved_fen)",
    )
    acknowledged = [p for p in payments if p["acknowledged"]]
    lost = [p["reward_id"] for p in acknowledged if p["reward_id"] not in live_fen]
    checks.check(
        "every acknowledged payment is recorded once",
        not lost,
        f"{len(acknowledged)} acknowledged, {len(lost)} without their live payment",
    )
    return {"rewards": len(ledger), "paid": len(live), "payments_acknowledged": len(acknowledged)}


def check_objects(checks: Checks, fleet: Fleet, database_url: str, moto_port: int, plant: int) -> dict[str, Any]:
    client = s3_client(moto_port)
    rows = asyncio.run(fetch(database_url, "SELECT id, original_key, display_key, thumbnail_key FROM uploads"))
    referenced = upload_objects(rows)
    stored = bucket_keys(client)
    dangling = sorted(set(referenced) - stored)
    checks.check(
        "no upload row points at a missing object",
        not dangling,
        f"{len(rows)} uploads, {len(referenced)} objects referenced, {len(dangling)} missing",
    )
    orphans = sorted(k for k in stored if k not in referenced)
    planted = []
    if len(orphans) < plant:
        import io

        for _ in range(plant - len(orphans)):
            key = f"uploads/{uuid.uuid4()}/original.jpeg"
            client.put_object(BUCKET, key, io.BytesIO(b"planted orphan"), 14, "image/jpeg")
            planted.append(key)
    before = len(bucket_keys(client))
    output = fleet.cli("cleanup", "--orphan-grace-minutes", "0").strip()
    after_keys = bucket_keys(client)
    left = sorted(k for k in after_keys if k not in referenced)
    rows_after = asyncio.run(fetch(database_url, "SELECT id, original_key, display_key, thumbnail_key FROM uploads"))
    lost = sorted(set(upload_objects(rows_after)) - after_keys)
    removed = before - len(after_keys)
    checks.check(
        "cleanup removes the orphaned objects and nothing referenced",
        not left and not lost and removed == len(orphans) + len(planted),
        f"{len(orphans)} orphans left by the run + {len(planted)} planted; cleanup removed {removed} ({output}); "
        f"{len(left)} orphans left, {len(lost)} referenced objects lost",
    )
    return {
        "uploads": len(rows),
        "objects_before_cleanup": before,
        "orphans_from_run": len(orphans),
        "orphans_planted": len(planted),
        "removed_by_cleanup": removed,
        "cleanup_output": output,
    }


def check_outbox(checks: Checks, database_url: str, sent: list[dict[str, Any]], logdir: Path) -> dict[str, Any]:
    rows = asyncio.run(fetch(database_url, "SELECT status, count(*) AS n FROM notification_outbox GROUP BY status"))
    by_status = {r["status"]: int(r["n"]) for r in rows}
    contents = Counter(json.dumps(body, sort_keys=True, ensure_ascii=False) for body in sent)
    repeated = sum(n - 1 for n in contents.values() if n > 1)
    checks.check(
        "no outbox message sent twice",
        repeated == 0 and len(sent) == by_status.get("sent", 0),
        f"fake WeChat got {len(sent)} sends, outbox rows sent {by_status.get('sent', 0)}; {repeated} repeated; "
        f"outbox by status {by_status}",
    )
    claimed = []
    for index in range(2):
        total = 0
        for line in (logdir / f"worker-{index}.log").read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, AttributeError):
                entry = json.loads(line)
                if entry.get("message") == "outbox drained":
                    total += int(entry.get("claimed", 0))
        claimed.append(total)
    checks.check(
        "both workers claimed messages",
        all(n > 0 for n in claimed),
        f"messages claimed per worker {claimed}",
    )
    return {"outbox_by_status": by_status, "wechat_sends": len(sent), "claimed_per_worker": claimed}


def scan_logs(logdir: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path in sorted(logdir.glob("*.log")):
        levels: Counter[str] = Counter()
        messages: Counter[str] = Counter()
        tracebacks = 0
        for line in path.read_text(errors="replace").splitlines():
            tracebacks += line.startswith("Traceback")
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") in ("ERROR", "CRITICAL"):
                levels[entry["level"]] += 1
                messages[str(entry.get("message", ""))[:120]] += 1
        found[path.stem] = {"errors": dict(levels), "messages": dict(messages.most_common(8)), "tracebacks": tracebacks}
    return found


# --- the run -------------------------------------------------------------------------------------------------------


def machine_facts() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 1024**2
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(memory_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg(),
    }


def git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from app.demo.seed import DEMO_STAFF

    report: dict[str, Any] = {
        "benchmark": "faults",
        "argv": sys.argv[1:],
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine_facts(),
        "config": {
            "duration_s": args.duration,
            "grace_s": args.grace,
            "kills": args.kills,
            "outage_s": args.outage_seconds,
            "s3_outage": args.s3_outage,
            "clients": args.clients,
            "reporters_per_client": args.reporters,
            "staff_per_client": args.staff,
            "drive_every": args.drive_every,
            "apis": 2,
            "workers": 2,
        },
    }
    workdir = Path(tempfile.mkdtemp(prefix="faults_"))
    workdir.chmod(0o755)
    logdir = workdir / "logs"
    logdir.mkdir()
    postgres = PrivatePostgres(workdir)
    moto: subprocess.Popen[bytes] | None = None
    fleet: Fleet | None = None
    wechat_server = None
    sent: list[dict[str, Any]] = []
    try:
        step(f"private PostgreSQL cluster on port {postgres.port} ({postgres.dir})")
        postgres.create()
        moto_port = free_port()
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
            stdout=(logdir / "moto.out").open("wb"),
            stderr=subprocess.STDOUT,
        )
        wechat_server, wechat_url = serve_in_thread(fake_wechat_app(sent))
        report["config"]["postgres_port"] = postgres.port
        report["config"]["moto_port"] = moto_port
        return asyncio.run(
            _run_async(args, report, workdir, logdir, postgres, moto, moto_port, wechat_url, sent, DEMO_STAFF)
        )
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        fleet = report.pop("_fleet", None)
        if fleet is not None:
            fleet.stop()
        if moto is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(moto.pid, signal.SIGCONT)
            moto.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                moto.wait(timeout=10)
        if wechat_server is not None:
            wechat_server.should_exit = True
        postgres.destroy()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def _run_async(
    args: argparse.Namespace,
    report: dict[str, Any],
    workdir: Path,
    logdir: Path,
    postgres: PrivatePostgres,
    moto: subprocess.Popen[bytes],
    moto_port: int,
    wechat_url: str,
    sent: list[dict[str, Any]],
    demo_staff: Any,
) -> dict[str, Any]:
    proxy = CuttableProxy(moto_port)
    await proxy.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZARD_")}
    env.update(
        {
            "HAZARD_ENVIRONMENT": "development",
            "HAZARD_WECHAT__DEV_LOGIN": "true",
            "HAZARD_EMBEDDED_WORKER": "false",
            "HAZARD_LOG_LEVEL": "WARNING",
            "HAZARD_DATABASE__URL": postgres.url,
            "HAZARD_STORAGE__BACKEND": "s3",
            "HAZARD_STORAGE__S3_ENDPOINT": f"127.0.0.1:{proxy.port}",
            "HAZARD_STORAGE__S3_ACCESS_KEY": S3_KEYS[0],
            "HAZARD_STORAGE__S3_SECRET_KEY": S3_KEYS[1],
            "HAZARD_STORAGE__S3_BUCKET": BUCKET,
            "HAZARD_WECHAT__API_BASE": wechat_url,
            "HAZARD_WECHAT__APP_ID": WECHAT_APP[0],
            "HAZARD_WECHAT__APP_SECRET": WECHAT_APP[1],
            "HAZARD_WECHAT__TEMPLATES": json.dumps(TEMPLATES),
            "HAZARD_WORKER_IDLE_SECONDS": "1",
        }
    )
    fleet = Fleet(env, logdir, [free_port(), free_port()])
    report["_fleet"] = fleet
    step("migrate and seed-demo")
    await asyncio.to_thread(fleet.cli, "migrate")
    await asyncio.to_thread(fleet.cli, "seed-demo")
    step("two API processes and two workers")
    for index in range(2):
        fleet.start_api(index)
    fleet.start_workers(2)
    for index in range(2):
        await wait_ready(fleet.base_urls[index], fleet.apis[index], logdir / f"api-{index}.log", START_SECONDS)  # type: ignore[arg-type]

    passwords = {s.username: s.password for s in demo_staff}
    context = multiprocessing.get_context("spawn")
    stop_load = context.Event()
    clients = []
    for index in range(args.clients):
        spec = LoadSpec(
            # A cap only, for a lost orchestrator: the load ends when it sets stop_load after the last fault, which
            # can be long after --duration on a busy machine (each kill waits for its restart to answer).
            index,
            fleet.base_urls,
            args.reporters,
            args.staff,
            args.drive_every,
            passwords,
            3 * args.duration + 120 * (args.kills + 2),
            args.grace,
            index,
        )
        parent, child = context.Pipe(duplex=False)
        process = context.Process(target=client_process, args=(child, stop_load, spec), daemon=True)
        process.start()
        child.close()
        clients.append((process, parent))
    step(
        f"load: {args.clients} client processes x ({args.reporters} reporters + {args.staff} staff drivers), "
        f"at least {args.duration:g} s"
    )
    load_started = time.monotonic()
    faults = await run_faults(args, fleet, postgres, proxy, moto)
    # The load lasts --duration or until the last fault is over and a few seconds more, whichever is later.
    await asyncio.sleep(5)
    stop_load.set()
    faults["load_s"] = round(time.monotonic() - load_started, 1)
    step("faults done; load stopped; waiting for the clients to finish their retries")
    loads = []
    for process, conn in clients:
        ready = await asyncio.to_thread(conn.poll, args.grace + 120)
        if not ready:
            raise BenchError("a client process did not report")
        kind, payload = conn.recv()
        if kind != "result":
            raise BenchError(f"a client process failed: {payload}")
        loads.append(payload)
        process.join(timeout=10)

    step("letting the workers drain the outbox")
    settle_end = time.monotonic() + args.settle
    open_messages = -1
    while time.monotonic() < settle_end:
        rows = await fetch(
            postgres.url,
            "SELECT count(*) AS n FROM notification_outbox WHERE status IN ('pending', 'sending')",
        )
        open_messages = int(rows[0]["n"])
        if open_messages == 0:
            break
        await asyncio.sleep(1)
    alive = {
        "apis": [p is not None and p.poll() is None for p in fleet.apis],
        "workers": [p.poll() is None for p in fleet.workers],
    }
    ready_after = []
    import httpx

    async with httpx.AsyncClient(timeout=10) as http:
        for url in fleet.base_urls:
            with contextlib.suppress(httpx.HTTPError):
                ready_after.append((await http.get(url + "/readyz")).status_code)
    fleet.stop()

    submissions = [s for load in loads for s in load["submissions"]]
    payments = [p for load in loads for p in load["payments"]]
    statuses: Counter[str] = Counter()
    for load in loads:
        statuses.update(load["statuses"])
    report["faults"] = faults
    report["load"] = {
        "requests": sum(load["requests"] for load in loads),
        "retries": sum(load["retries"] for load in loads),
        "submissions": len(submissions),
        "acknowledged": sum(s["acknowledged"] for s in submissions),
        "submission_tries_max": max((s["tries"] for s in submissions), default=0),
        "refused": [s["refused"] for s in submissions if s.get("refused")][:10],
        "drives": dict(sum((Counter(load["drives"]) for load in loads), Counter())),
        "stopped_by": [load["stopped_by"] for load in loads],
        "payments_started": len(payments),
        "payments_acknowledged": sum(p["acknowledged"] for p in payments),
        "statuses": dict(sorted(statuses.items())),
        "error_samples": {k: v for load in loads for k, v in load["error_samples"].items()},
    }
    report["after"] = {"alive": alive, "readyz": ready_after, "open_outbox_messages": open_messages}
    report["logs"] = scan_logs(logdir)
    step("checks")
    checks = Checks()
    # Blocking clients (asyncpg in its own loop, minio, the cleanup command) in a thread: the proxy to S3 lives on
    # this loop and must keep serving.
    report["stored"] = await asyncio.to_thread(
        run_checks, checks, args, report, fleet, postgres.url, moto_port, sent, logdir, submissions, payments
    )
    report["checks"] = checks.results
    return report


def run_checks(
    checks: Checks,
    args: argparse.Namespace,
    report: dict[str, Any],
    fleet: Fleet,
    database_url: str,
    moto_port: int,
    sent: list[dict[str, Any]],
    logdir: Path,
    submissions: list[dict[str, Any]],
    payments: list[dict[str, Any]],
) -> dict[str, Any]:
    stored: dict[str, Any] = {}
    stored.update(check_reports(checks, database_url, submissions))
    stored.update(check_money(checks, database_url, payments))
    stored.update(check_objects(checks, fleet, database_url, moto_port, args.plant))
    stored.update(check_outbox(checks, database_url, sent, logdir))
    statuses = report["load"]["statuses"]
    internal = {k: v for k, v in statuses.items() if " 500" in k}
    checks.check("no answer was a 500", not internal, f"500 answers: {internal or 'none'}")
    kills = report["faults"]["kills"]
    checks.check(
        "the load ran until after the last fault",
        all(by == "orchestrator" for by in report["load"]["stopped_by"]),
        f"clients stopped by {report['load']['stopped_by']} after {report['faults'].get('load_s')} s",
    )
    checks.check(
        "every killed API process answered again",
        len(kills) == args.kills,
        f"{len(kills)} of {args.kills} kills restarted; slowest back in "
        f"{max((k['back_in_s'] for k in kills), default=0):.1f} s",
    )
    after = report["after"]
    checks.check(
        "both workers survived the outages; both APIs ready at the end",
        all(after["alive"]["workers"]) and all(after["alive"]["apis"]) and after["readyz"] == [200, 200],
        f"alive {after['alive']}, /readyz {after['readyz']}",
    )
    return stored


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=180, help="seconds of load and faults (default 180)")
    parser.add_argument("--grace", type=float, default=60, help="seconds clients may go on retrying (default 60)")
    parser.add_argument("--settle", type=float, default=45, help="seconds to let the outbox drain (default 45)")
    parser.add_argument("--kills", type=int, default=20, help="kill -9 of an API process (default 20)")
    parser.add_argument("--outage-seconds", type=float, default=8, help="PostgreSQL and S3 outages, s (0: none)")
    parser.add_argument("--s3-outage", choices=["refuse", "pause"], default="refuse", help="how S3 goes away")
    parser.add_argument("--clients", type=int, default=2, help="load client processes (default 2)")
    parser.add_argument("--reporters", type=int, default=4, help="reporters per client process (default 4)")
    parser.add_argument("--staff", type=int, default=2, help="staff drivers per client process (default 2)")
    parser.add_argument("--drive-every", type=int, default=3, help="staff drive every n-th case to payment")
    parser.add_argument("--plant", type=int, default=3, help="orphans to plant if the run left fewer (default 3)")
    parser.add_argument(
        "--restart-timeout", type=float, default=300, help="seconds a restarted API may take to answer (default 300)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, cluster)")
    args = parser.parse_args(argv)
    if not 5 <= args.duration <= 1800 or not 0 <= args.kills <= 200 or not 1 <= args.clients <= 8:
        parser.error("--duration 5..1800, --kills 0..200, --clients 1..8")
    return args


def print_summary(report: dict[str, Any], json_path: Path | None) -> None:
    machine, config, load = report["machine"], report["config"], report.get("load", {})
    faults, stored = report.get("faults", {}), report.get("stored", {})
    print()
    print(f"faults: 2 API processes + 2 workers, one PostgreSQL 15 (private), one S3 (moto), commit {report['commit']}")
    print(
        f"  machine      nproc {machine['nproc']}, {machine['cpu_model']}, {machine['memory_gib']} GiB, "
        f"load avg {machine['loadavg_start'][0]:.2f} at start"
    )
    print(
        f"  load         {config['clients']} client processes x ({config['reporters_per_client']} reporters + "
        f"{config['staff_per_client']} staff drivers), "
        f"{config['duration_s']:g} s (+ up to {config['grace_s']:g} s of retries)"
    )
    print(
        f"  requests     {load.get('requests', 0)} ({load.get('retries', 0)} retries); submissions "
        f"{load.get('submissions', 0)}, acknowledged {load.get('acknowledged', 0)}, most tries for one "
        f"{load.get('submission_tries_max', 0)}; cases paid {load.get('drives', {}).get('paid', 0)} "
        f"(payments acknowledged {load.get('payments_acknowledged', 0)})"
    )
    kills = faults.get("kills", [])
    if kills:
        back = [k["back_in_s"] for k in kills]
        print(f"  kills        {len(kills)} x kill -9, back in {min(back):.1f}–{max(back):.1f} s")
    for outage in faults.get("outages", []):
        print(f"  outage       {outage['what']} down {outage['down_s']:.1f} s at {outage['at_s']:.0f} s")
    errors = Counter()
    for key, count in load.get("statuses", {}).items():
        outcome = key.split(" ", 1)[1]
        if not outcome.startswith(("200", "201")):
            errors[outcome] += count
    print(f"  not 2xx      {dict(errors.most_common()) or 'none'}")
    if stored:
        print(
            f"  stored       {stored['reports']} reports ({stored['unacknowledged_but_stored']} of "
            f"{stored['unacknowledged']} unacknowledged ones), {stored['uploads']} uploads, {stored['paid']} "
            f"rewards paid; outbox {stored['outbox_by_status']}, WeChat sends {stored['wechat_sends']}, claimed per "
            f"worker {stored['claimed_per_worker']}"
        )
        print(
            f"  cleanup      {stored['orphans_from_run']} orphans from the run + {stored['orphans_planted']} planted, "
            f"removed {stored['removed_by_cleanup']}"
        )
    checks = report.get("checks", [])
    print(f"  checks       {sum(c['ok'] for c in checks)} of {len(checks)} passed")
    if json_path:
        print(f"  json         {json_path.relative_to(ROOT)}")


def write_json(report: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"faults-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def main() -> int:
    args = parse_args()
    if os.geteuid() != 0:
        print("faults: run as root (the private PostgreSQL cluster runs as the postgres OS user)", file=sys.stderr)
        return 1

    def terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, terminate)
    signal.signal(signal.SIGTERM, terminate)
    try:
        report = run(args)
    except BenchError as exc:
        print(f"faults: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("faults: interrupted; cleaned up", file=sys.stderr)
        return 130
    report.pop("_fleet", None)
    path = write_json(report)
    print_summary(report, path)
    return 1 if any(not c["ok"] for c in report.get("checks", [])) else 0


if __name__ == "__main__":
    sys.exit(main())
