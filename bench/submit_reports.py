"""Report submissions per second and their latency, end to end over HTTP, against PostgreSQL.

Run from the repository root:

    .venv/bin/python bench/submit_reports.py
    .venv/bin/python bench/submit_reports.py --workers 2 --concurrency 32 --duration 10 --warmup 3
    .venv/bin/python bench/submit_reports.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres \\
        --no-pgbench

What it does, all on loopback and bounded in time:

1. creates a scratch database ``bench_submit_<pid>`` next to the one --database-url names, migrates it with the
   Alembic migrations, and drops it at the end (also on failure and Ctrl-C);
2. serves the API from it with ``uvicorn --factory app.main:create_app --workers N`` on a free loopback port
   (development settings, dev WeChat login, no embedded worker, local storage in a temporary directory);
3. logs in one reporter per client and bulk-inserts one fresh Upload row per planned submission straight into the
   database (submission reads only the rows, never the objects), so photo uploads are not in the measured path;
4. runs a closed loop of ``--concurrency`` clients (httpx, HTTP/1.1 keep-alive, one separate process) posting valid
   ``POST /v1/reports`` with a unique Idempotency-Key each, for --warmup then --duration seconds, and reports the
   submissions that completed inside the measured window: rate, errors by status, p50/p95/p99/max latency;
5. for comparison, measures the machine's ceiling with pgbench: single-row INSERTs of a full valid row (a copy of
   one the API wrote, with a fresh id and number) into the same ``reports`` table (``-c 16 -j 2``), and prints
   submissions/s divided by pgbench tps (skip: --no-pgbench).

While the load runs it also samples what the database backends wait on (pg_stat_activity, pg_locks) and the CPU
used by the server, PostgreSQL and the load generator, which all share the same cores: on a small machine the load
generator's own CPU is a real part of the figure. A JSON copy of everything goes to
``bench/results/submit_reports-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
PGBENCH_FALLBACK = "/usr/lib/postgresql/15/bin/pgbench"

# A point in 英德市 (GCJ-02), as tests/support/api.py submits it, and a WGS-84 photo position a few hundred metres
# from it, so the evidence checks run their distance arithmetic without raising a flag.
LOCATION = {"longitude": 113.405, "latitude": 24.186, "datum": "gcj02", "accuracy_m": 15.0, "address": "英德市英城街道"}
PHOTO_LONGITUDE, PHOTO_LATITUDE = 113.4000, 24.1890
DESCRIPTION = "饭店后厨液化气瓶放在灶台旁边，软管老化"
CATEGORY = "gas"
# Reports land at random within ~15 km of the county seat, as real ones do; all on one spot would make every report
# a duplicate candidate of every other (a worst case the duplicate search caps, not the case to measure).
SPREAD_DEGREES = 0.15


def _spread(location: dict[str, Any]) -> dict[str, Any]:
    return {
        **location,
        "longitude": location["longitude"] + random.uniform(-SPREAD_DEGREES, SPREAD_DEGREES),
        "latitude": location["latitude"] + random.uniform(-SPREAD_DEGREES, SPREAD_DEGREES),
    }


SERVER_START_SECONDS = 60
LOGIN_SECONDS = 60
STOP_GRACE_SECONDS = 15
PGBENCH_SLACK_SECONDS = 60
MAX_UPLOAD_ROWS = 1_000_000
SAMPLE_INTERVAL = 0.25


class BenchError(RuntimeError):
    """A failure that ends the run with a message instead of a traceback."""


# --- the load generator (runs in its own process) ---------------------------------------------------------------


@dataclass
class LoadSpec:
    base_url: str
    tokens: list[str]
    upload_groups: list[list[list[str]]]  # per client: the upload ids of each planned submission
    warmup: float
    duration: float
    request_timeout: float


def loadgen_process(conn: Any, spec: LoadSpec) -> None:
    """Entry point of the load-generator process: runs the loop and sends ("result", dict) or ("error", text)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and terminates us
    try:
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            loop_factory = None
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            result = runner.run(_run_load(conn, spec))
        conn.send(("result", result))
    except BaseException as exc:
        with contextlib.suppress(Exception):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


async def _run_load(conn: Any, spec: LoadSpec) -> dict[str, Any]:
    import httpx

    concurrency = len(spec.tokens)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    records: list[tuple[float, float, str]] = []  # (start offset s, latency s, status)
    error_samples: dict[str, str] = {}
    exhausted = 0

    async with httpx.AsyncClient(
        base_url=spec.base_url, limits=limits, timeout=httpx.Timeout(spec.request_timeout), http2=False
    ) as client:
        started = time.perf_counter()
        started_wall = time.time()
        conn.send(("started", started_wall))
        end = started + spec.warmup + spec.duration

        async def one_client(index: int) -> None:
            nonlocal exhausted
            headers = {"Authorization": f"Bearer {spec.tokens[index]}", "Content-Type": "application/json"}
            groups = spec.upload_groups[index]
            while time.perf_counter() < end:
                if not groups:
                    exhausted += 1
                    return
                body = {
                    "category": CATEGORY,
                    "hazard_kind": "accident_hazard",
                    "description": DESCRIPTION,
                    "location": _spread(LOCATION),
                    "observed_at": "2026-11-20T09:30:00+08:00",
                    "upload_ids": groups.pop(),
                }
                content = json.dumps(body, ensure_ascii=False).encode()
                request_headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}
                t0 = time.perf_counter()
                try:
                    response = await client.post("/v1/reports", content=content, headers=request_headers)
                    status = str(response.status_code)
                    if response.status_code != 201:
                        status = f"{status} {_error_code(response)}"
                        error_samples.setdefault(status, response.text[:500])
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                    error_samples.setdefault(status, str(exc)[:500])
                records.append((t0 - started, time.perf_counter() - t0, status))

        window_cpu: list[float] = []

        async def mark_window() -> None:
            for boundary in (started + spec.warmup, end):
                await asyncio.sleep(max(0.0, boundary - time.perf_counter()))
                window_cpu.append(_own_cpu_seconds())

        marker = asyncio.create_task(mark_window())
        await asyncio.gather(*(one_client(i) for i in range(concurrency)))
        finished = time.perf_counter()
        await marker

    return {
        "started_wall": started_wall,
        "elapsed": finished - started,
        "records": records,
        "error_samples": error_samples,
        "exhausted_clients": exhausted,
        "cpu_seconds": _own_cpu_seconds(),
        "window_cpu_cores": (window_cpu[1] - window_cpu[0]) / spec.duration if len(window_cpu) == 2 else None,
    }


def _error_code(response: Any) -> str:
    try:
        return str(response.json()["error"]["code"])
    except Exception:
        return "-"


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


# --- statistics ---------------------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(load: dict[str, Any], warmup: float, duration: float) -> dict[str, Any]:
    """Requests that completed inside the measured window [warmup, warmup + duration)."""
    window_start, window_end = warmup, warmup + duration
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    per_second = [0] * max(1, math.ceil(duration))
    all_statuses: Counter[str] = Counter()
    for start, latency, status in load["records"]:
        all_statuses[status] += 1
        done = start + latency
        if not window_start <= done < window_end:
            continue
        statuses[status] += 1
        if status == "201":
            latencies.append(latency)
            per_second[min(len(per_second) - 1, int(done - window_start))] += 1
    latencies.sort()
    completed = len(latencies)
    ms = [v * 1000 for v in latencies]
    return {
        "completed": completed,
        "errors": {k: v for k, v in sorted(statuses.items()) if k != "201"},
        "rps": completed / duration,
        "latency_ms": {
            "p50": percentile(ms, 50),
            "p95": percentile(ms, 95),
            "p99": percentile(ms, 99),
            "max": ms[-1] if ms else math.nan,
            "mean": sum(ms) / completed if completed else math.nan,
        },
        "per_second": per_second,
        "all_requests": dict(sorted(all_statuses.items())),
        "created_total": all_statuses.get("201", 0),
    }


# --- the scratch database -----------------------------------------------------------------------------------------


def _url(base: Any, database: str, driver: str | None = None) -> str:
    url = base.set(database=database)
    if driver:
        url = url.set(drivername=driver)
    return url.render_as_string(hide_password=False)


async def _admin(base: Any, *statements: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_url(base, base.database or "postgres", "postgresql"), timeout=10)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _connect(base: Any, database: str) -> Any:
    import asyncpg

    return await asyncpg.connect(_url(base, database, "postgresql"), timeout=10)


# --- the API server -----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(args: argparse.Namespace, database_url: str, storage_root: Path, log_path: Path) -> tuple[Any, str]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZARD_")}
    env.update(
        {
            "HAZARD_ENVIRONMENT": "development",
            "HAZARD_WECHAT__DEV_LOGIN": "true",
            "HAZARD_EMBEDDED_WORKER": "false",
            "HAZARD_LOG_LEVEL": "WARNING",
            "HAZARD_DATABASE__URL": database_url,
            "HAZARD_STORAGE__BACKEND": "local",
            "HAZARD_STORAGE__LOCAL_ROOT": str(storage_root),
            "HAZARD_PUBLIC_BASE_URL": base_url,
        }
    )
    if args.pool_size is not None:
        env["HAZARD_DATABASE__POOL_SIZE"] = str(args.pool_size)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "app.main:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return process, base_url


def stop_process_group(process: Any) -> None:
    """SIGTERM the process group we started (uvicorn and its workers), then SIGKILL it if it lingers."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


async def wait_healthy(process: Any, base_url: str, log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + SERVER_START_SECONDS
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BenchError(f"the server exited with {process.returncode}:\n{_tail(log_path)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/healthz")).status_code == 200 and (
                    await client.get("/readyz")
                ).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise BenchError(f"the server did not answer /healthz within {SERVER_START_SECONDS} s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def scan_server_log(path: Path) -> dict[str, Any]:
    """Error and warning lines the server wrote (JSON log lines, plus anything uvicorn printed)."""
    levels: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    tracebacks = 0
    for line in path.read_text(errors="replace").splitlines():
        tracebacks += line.startswith("Traceback")
        try:
            entry = json.loads(line)
        except ValueError:
            if line.strip():
                messages[f"(raw) {line.strip()[:160]}"] += 1
            continue
        if not isinstance(entry, dict):
            continue
        level = str(entry.get("level", "?"))
        levels[level] += 1
        message = str(entry.get("message", ""))
        exception = str(entry.get("exception", "")).strip().splitlines()
        if exception:
            message += " | " + exception[-1][:200]
        messages[f"{level}: {message}"] += 1
    return {"levels": dict(levels), "tracebacks": tracebacks, "messages": dict(messages.most_common(10))}


# --- setup: reporters and uploads ---------------------------------------------------------------------------------


async def login_reporters(base_url: str, count: int) -> list[tuple[str, str]]:
    """Dev login of ``count`` reporters; returns (access token, reporter id) per reporter."""
    import httpx

    semaphore = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def login(index: int) -> tuple[str, str]:
            async with semaphore:
                response = await client.post("/v1/auth/wechat/login", json={"code": f"dev:bench{index}"})
            if response.status_code != 200:
                raise BenchError(f"dev login failed: {response.status_code} {response.text[:300]}")
            body = response.json()
            return body["access_token"], body["reporter_id"]

        return await asyncio.wait_for(asyncio.gather(*(login(i) for i in range(count))), LOGIN_SECONDS)


async def create_uploads(
    base: Any, database: str, reporter_ids: list[str], per_client: int, photos: int
) -> list[list[list[str]]]:
    """One fresh, unattached Upload row per photo of every planned submission, owned by that client's reporter."""
    now = datetime.now(UTC)
    columns = [
        "id",
        "owner",
        "sha256",
        "perceptual_hash",
        "size_bytes",
        "format",
        "mime_type",
        "width",
        "height",
        "original_key",
        "display_key",
        "thumbnail_key",
        "exif_captured_at",
        "exif_longitude",
        "exif_latitude",
        "report_id",
        "position",
        "created_at",
    ]
    records: list[tuple[Any, ...]] = []
    groups: list[list[list[str]]] = []
    for reporter_id in reporter_ids:
        owner = f"reporter:{reporter_id}"
        client_groups = []
        for _ in range(per_client):
            ids = []
            for _ in range(photos):
                upload_id = uuid.uuid4()
                base_key = f"uploads/{upload_id}"  # the layout of app.intake.uploads.ObjectKeys
                records.append(
                    (
                        upload_id,
                        owner,
                        hashlib.sha256(upload_id.bytes).hexdigest(),
                        upload_id.hex[:16],
                        1_500_000,
                        "jpeg",
                        "image/jpeg",
                        4000,
                        3000,
                        f"{base_key}/original.jpeg",
                        f"{base_key}/display.jpg",
                        f"{base_key}/thumbnail.jpg",
                        now - timedelta(hours=1),
                        PHOTO_LONGITUDE,
                        PHOTO_LATITUDE,
                        None,
                        None,
                        now - timedelta(minutes=5),
                    )
                )
                ids.append(str(upload_id))
            client_groups.append(ids)
        groups.append(client_groups)
    connection = await _connect(base, database)
    try:
        await connection.copy_records_to_table("uploads", records=records, columns=columns)
        await connection.execute("VACUUM (ANALYZE) uploads")
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return groups


async def checkpoint(base: Any, database: str) -> None:
    """A checkpoint before each measurement, so that one is less likely to start during it."""
    connection = await _connect(base, database)
    try:
        with contextlib.suppress(Exception):  # needs superuser or pg_checkpoint; optional
            await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


# --- sampling while the load runs ---------------------------------------------------------------------------------

WAIT_SAMPLE_SQL = """
SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'running') ELSE state END,
       left(regexp_replace(query, '\\s+', ' ', 'g'), 70) AS query,
       count(*)::int
FROM pg_stat_activity
WHERE datname = $1 AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')
GROUP BY 1, 2
"""

LOCK_SAMPLE_SQL = """
SELECT l.locktype || coalesce(' ' || c.relname, '') AS lock, count(*)::int
FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation
WHERE NOT l.granted AND l.pid IN (SELECT pid FROM pg_stat_activity WHERE datname = $1)
GROUP BY 1
"""

# The backends at the head of the lock queues (blocking others, not waiting on a lock themselves): what they are
# doing while they hold the lock. "idle in transaction" means the database waits for the application's next query.
HOLDER_SAMPLE_SQL = """
WITH blockers AS (
    SELECT DISTINCT unnest(pg_blocking_pids(pid)) AS pid
    FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'
)
SELECT CASE WHEN a.state = 'active' THEN coalesce(a.wait_event_type || ':' || a.wait_event, 'running')
            ELSE a.state END,
       left(regexp_replace(a.query, '\\s+', ' ', 'g'), 70),
       count(*)::int
FROM pg_stat_activity a JOIN blockers b ON b.pid = a.pid
WHERE a.wait_event_type IS DISTINCT FROM 'Lock'
GROUP BY 1, 2
"""

DB_STATS_SQL = "SELECT xact_commit, xact_rollback, deadlocks FROM pg_stat_database WHERE datname = $1"


@dataclass
class Sampler:
    """What the database backends wait on, and CPU time by process group, over the measured window."""

    database: str
    server_pid: int
    loadgen_pid: int
    samples: int = 0
    waits: Counter[tuple[str, str]] = field(default_factory=Counter)
    locks: Counter[str] = field(default_factory=Counter)
    holders: Counter[tuple[str, str]] = field(default_factory=Counter)
    contended: int = 0  # samples in which at least one backend waited on a heavyweight lock
    active: int = 0
    cpu_start: dict[str, Any] | None = None
    cpu_end: dict[str, Any] | None = None
    db_start: tuple[int, int, int] | None = None
    db_end: tuple[int, int, int] | None = None

    async def sample(self, connection: Any) -> None:
        self.samples += 1
        waiting = False
        for wait, query, count in await connection.fetch(WAIT_SAMPLE_SQL, self.database):
            self.waits[(wait, query or "")] += count
            self.active += count
            waiting = waiting or wait.startswith("Lock:")
        self.contended += waiting
        for lock, count in await connection.fetch(LOCK_SAMPLE_SQL, self.database):
            self.locks[lock] += count
        for state, query, count in await connection.fetch(HOLDER_SAMPLE_SQL, self.database):
            self.holders[(state, query or "")] += count

    async def db_stats(self, connection: Any) -> tuple[int, int, int]:
        row = await connection.fetchrow(DB_STATS_SQL, self.database)
        return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)

    async def cpu_snapshot(self, connection: Any) -> dict[str, Any]:
        # Our database's backends and the cluster's background processes, not other databases' sessions.
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 OR backend_type <> 'client backend'", self.database
        )
        return self._cpu_snapshot({int(r[0]) for r in rows})

    def _cpu_snapshot(self, postgres_pids: set[int]) -> dict[str, Any]:
        try:
            import psutil
        except ImportError:
            return {}
        groups: dict[str, dict[int, float]] = {"server": {}, "postgres": {}, "load generator": {}, "this script": {}}

        def add(group: str, process: Any) -> None:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                groups[group][process.pid] = times.user + times.system

        with contextlib.suppress(psutil.Error):
            server = psutil.Process(self.server_pid)
            for process in [server, *server.children(recursive=True)]:
                add("server", process)
        with contextlib.suppress(psutil.Error):
            add("load generator", psutil.Process(self.loadgen_pid))
        add("this script", psutil.Process())
        for pid in postgres_pids:
            with contextlib.suppress(psutil.Error):
                add("postgres", psutil.Process(pid))
        machine = psutil.cpu_times()._asdict()
        total = sum(v for k, v in machine.items() if k not in ("guest", "guest_nice"))  # guest is within user
        iowait = machine.get("iowait", 0.0)
        return {
            "time": time.monotonic(),
            "groups": groups,
            "busy": total - machine["idle"] - iowait,
            "total": total,
            "iowait": iowait,
        }

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"samples": self.samples}
        if self.samples:
            out["avg_in_transaction"] = self.active / self.samples
            out["waits"] = [
                {"wait": wait, "query": query, "avg_backends": count / self.samples}
                for (wait, query), count in self.waits.most_common(8)
            ]
            out["ungranted_locks"] = {lock: count / self.samples for lock, count in self.locks.most_common(8)}
            out["lock_contended_share"] = self.contended / self.samples
            out["lock_holders"] = [
                {"state": state, "query": query, "share_of_samples": count / self.samples}
                for (state, query), count in self.holders.most_common(8)
            ]
        if self.cpu_start and self.cpu_end:
            start, end = self.cpu_start, self.cpu_end
            seconds = end["time"] - start["time"]
            cores: dict[str, float] = {}
            for group, pids in end["groups"].items():
                before = start["groups"].get(group, {})
                used = sum(value - before.get(pid, 0.0) for pid, value in pids.items())
                cores[group] = used / seconds
            total = end["total"] - start["total"]
            busy_cores = (end["busy"] - start["busy"]) / seconds
            cores["other processes"] = busy_cores - sum(cores.values())
            out["cpu"] = {
                "seconds": seconds,
                "cores_used": cores,
                "machine_busy_pct": 100 * (end["busy"] - start["busy"]) / total if total else math.nan,
                "machine_iowait_pct": 100 * (end["iowait"] - start["iowait"]) / total if total else math.nan,
            }
        if self.db_start and self.db_end:
            out["pg_stat_database"] = {
                name: self.db_end[i] - self.db_start[i]
                for i, name in enumerate(("xact_commit", "xact_rollback", "deadlocks"))
            }
        return out


async def drive_load(
    args: argparse.Namespace, base: Any, database: str, server_pid: int, spec: LoadSpec
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the load-generator process and sample the database and CPU while it runs."""
    context = multiprocessing.get_context("spawn")
    parent_conn, child_conn = context.Pipe(duplex=False)
    process = context.Process(target=loadgen_process, args=(child_conn, spec), name="submit-loadgen")
    process.start()
    child_conn.close()
    sampler = Sampler(database, server_pid, process.pid or 0)
    monitor = await _connect(base, database)
    started_wall: float | None = None
    result: dict[str, Any] | None = None
    deadline = time.monotonic() + 60 + args.warmup + args.duration + args.request_timeout
    try:
        while result is None:
            if time.monotonic() > deadline:
                raise BenchError("the load generator did not finish in time")
            while result is None and parent_conn.poll():
                kind, payload = parent_conn.recv()
                if kind == "started":
                    started_wall = payload
                elif kind == "result":
                    result = payload
                else:
                    raise BenchError(f"the load generator failed: {payload}")
            pause = SAMPLE_INTERVAL
            if started_wall is not None:
                now = time.time()
                window_start, window_end = started_wall + args.warmup, started_wall + args.warmup + args.duration
                if sampler.cpu_start is None and (now >= window_start or result is not None):
                    sampler.cpu_start = await sampler.cpu_snapshot(monitor)
                    sampler.db_start = await sampler.db_stats(monitor)
                elif sampler.cpu_start is not None and sampler.cpu_end is None:
                    if now >= window_end or result is not None:
                        sampler.cpu_end = await sampler.cpu_snapshot(monitor)
                        sampler.db_end = await sampler.db_stats(monitor)
                    else:
                        await sampler.sample(monitor)
                now = time.time()
                if sampler.cpu_start is None:
                    pause = min(pause, max(0.0, window_start - now))
                elif sampler.cpu_end is None:
                    pause = min(pause, max(0.0, window_end - now))
            if result is None:
                if not process.is_alive() and not parent_conn.poll():
                    raise BenchError(f"the load generator exited with {process.exitcode}")
                await asyncio.sleep(pause)
    finally:
        await monitor.close()
        process.join(timeout=10 if result is not None else 0)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
    return result, sampler.report()


# --- pgbench ------------------------------------------------------------------------------------------------------


# Fresh values for the columns that must differ per row; every other column is copied as a literal from a report the
# API itself wrote, so the row stays a full, valid one as the schema grows.
PGBENCH_FRESH = {
    "id": "gen_random_uuid()",
    "number": "replace(gen_random_uuid()::text, '-', '')",
    "created_at": "now()",
}

TEMPLATE_ROW_SQL = """
SELECT a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type, quote_nullable(v.value) AS literal
FROM pg_attribute a
JOIN (SELECT * FROM jsonb_each_text((SELECT to_jsonb(r) FROM reports r ORDER BY created_at LIMIT 1))) v
    ON v.key = a.attname
WHERE a.attrelid = 'reports'::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


async def pgbench_script(base: Any, database: str, reporter_id: str) -> tuple[str, str]:
    """The INSERT pgbench runs, and where its values came from."""
    connection = await _connect(base, database)
    try:
        rows = await connection.fetch(TEMPLATE_ROW_SQL)
    finally:
        await connection.close()
    if rows:
        columns = [r["column"] for r in rows]
        values = [PGBENCH_FRESH.get(r["column"], f"{r['literal']}::{r['type']}") for r in rows]
        source = "copied from a report the API wrote"
    else:  # no submission succeeded: a hand-written row with the original columns
        columns = [
            *PGBENCH_FRESH,
            "reporter_id",
            "channel",
            "state",
            "category_code",
            "hazard_kind",
            "description",
            "longitude",
            "latitude",
            "datum",
            "accuracy_m",
            "address",
            "region_code",
            "observed_at",
            "reporter_is_employee",
            "identity_hidden",
            "query_code_hash",
            "flags",
        ]
        values = [
            *PGBENCH_FRESH.values(),
            f"'{reporter_id}'::uuid",
            "'miniprogram'",
            "'submitted'",
            f"'{CATEGORY}'",
            "'accident_hazard'",
            f"'{DESCRIPTION}'",
            str(LOCATION["longitude"]),
            str(LOCATION["latitude"]),
            f"'{LOCATION['datum']}'",
            str(LOCATION["accuracy_m"]),
            f"'{LOCATION['address']}'",
            "'441881'",
            "now() - interval '1 hour'",
            "false",
            "false",
            f"'{hashlib.sha256(b'pgbench').hexdigest()}'",
            "'[]'",
        ]
        source = "hand-written (no report from the API to copy)"
    return f"INSERT INTO reports ({', '.join(columns)}) VALUES ({', '.join(values)});\n", source


def run_pgbench(args: argparse.Namespace, base: Any, database: str, reporter_id: str, workdir: Path) -> dict[str, Any]:
    binary = shutil.which("pgbench") or (PGBENCH_FALLBACK if Path(PGBENCH_FALLBACK).exists() else None)
    if binary is None:
        raise BenchError("pgbench not found (install postgresql-client or pass --no-pgbench)")
    script = workdir / "insert_report.sql"
    sql, source = asyncio.run(pgbench_script(base, database, reporter_id))
    script.write_text(sql, encoding="utf-8")
    duration = args.pgbench_duration or max(1, round(args.duration))
    command = [binary, "-n", "-f", str(script), "-c", str(args.pgbench_clients), "-j", "2", "-T", str(duration)]
    if base.host:
        command += ["-h", base.host]
    if base.port:
        command += ["-p", str(base.port)]
    if base.username:
        command += ["-U", base.username]
    command.append(database)
    env = {**os.environ, "PGCLIENTENCODING": "UTF8"}
    if base.password:
        env["PGPASSWORD"] = base.password
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=duration + PGBENCH_SLACK_SECONDS)
    finally:
        stop_process_group(process)
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", output)
    if process.returncode != 0 or tps is None:
        raise BenchError(f"pgbench failed ({process.returncode}):\n{output[-2000:]}")
    latency = re.search(r"latency average = ([0-9.]+) ms", output)
    failed = re.search(r"number of failed transactions: (\d+)", output)
    return {
        "command": " ".join(command),
        "row": source,
        "script": sql,
        "clients": args.pgbench_clients,
        "duration": duration,
        "tps": float(tps.group(1)),
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "failed": int(failed.group(1)) if failed else None,
    }


# --- machine and database facts -----------------------------------------------------------------------------------


async def database_facts(base: Any, database: str) -> dict[str, Any]:
    connection = await _connect(base, database)
    try:
        settings = await connection.fetch(
            "SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1::text[]) ORDER BY name",
            ["shared_buffers", "synchronous_commit", "fsync", "wal_sync_method", "commit_delay", "max_connections"],
        )
        return {
            "server_version": await connection.fetchval("SHOW server_version"),
            "settings": {r["name"]: f"{r['setting']}{' ' + r['unit'] if r['unit'] else ''}" for r in settings},
        }
    finally:
        await connection.close()


async def stored_counts(base: Any, database: str) -> dict[str, int]:
    connection = await _connect(base, database)
    try:
        return {
            "reports": await connection.fetchval("SELECT count(*) FROM reports"),
            "attached_uploads": await connection.fetchval("SELECT count(*) FROM uploads WHERE report_id IS NOT NULL"),
            "idempotency_records": await connection.fetchval("SELECT count(*) FROM idempotency_records"),
        }
    finally:
        await connection.close()


def machine_facts() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    try:
        import httptools  # noqa: F401
        import uvloop  # noqa: F401

        server_stack = "uvloop + httptools"
    except ImportError:
        server_stack = "asyncio + h11"
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg(),
        "uvicorn_stack": server_stack,
    }


# --- the run ------------------------------------------------------------------------------------------------------


def check_args(args: argparse.Namespace, base: Any) -> None:
    if not base.drivername.startswith("postgresql"):
        raise BenchError("--database-url must be a PostgreSQL URL, e.g. " + DEFAULT_DATABASE_URL)
    if base.host and base.host not in LOOPBACK_HOSTS:
        raise BenchError(f"refusing a non-loopback database host {base.host!r}: this benchmark runs on loopback only")
    bounds = {
        "workers": (args.workers, 1, 16),
        "concurrency": (args.concurrency, 1, 512),
        "duration": (args.duration, 1, 300),
        "warmup": (args.warmup, 0, 120),
        "photos-per-report": (args.photos_per_report, 1, 9),
        "pgbench-clients": (args.pgbench_clients, 1, 64),
    }
    for name, (value, low, high) in bounds.items():
        if not low <= value <= high:
            raise BenchError(f"--{name} must be between {low} and {high}")


def plan_uploads(args: argparse.Namespace) -> int:
    """Submissions each client may make: generous, as the loop stops a client that runs out."""
    total = args.max_rps * (args.warmup + args.duration)
    per_client = math.ceil(total / args.concurrency) + 16
    cap = MAX_UPLOAD_ROWS // (args.concurrency * args.photos_per_report)
    return max(1, min(per_client, cap))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg
    from sqlalchemy import make_url

    from app.core.config import DatabaseSettings

    base = make_url(args.database_url)
    check_args(args, base)
    if base.drivername != "postgresql+asyncpg":
        base = base.set(drivername="postgresql+asyncpg")  # what the app and the migrations use
    database = f"bench_submit_{os.getpid()}"
    database_url = _url(base, database)
    report: dict[str, Any] = {
        "benchmark": "submit_reports",
        "argv": sys.argv[1:],
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "workers": args.workers,
            "concurrency": args.concurrency,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "photos_per_report": args.photos_per_report,
            "pool_size": args.pool_size if args.pool_size is not None else DatabaseSettings().pool_size,
            "request_timeout_s": args.request_timeout,
        },
        "machine": machine_facts(),
        "database": {"name": database},
    }
    server = None
    created = False
    workdir = Path(tempfile.mkdtemp(prefix="bench_submit_"))
    log_path = workdir / "server.log"
    try:
        step(f"creating and migrating the scratch database {database}")
        try:
            asyncio.run(
                _admin(base, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', f'CREATE DATABASE "{database}"')
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise BenchError(f"cannot create {database} via {base.render_as_string()}: {exc}") from exc
        created = True
        from app.core.migrate import upgrade

        upgrade(database_url)
        report["database"].update(asyncio.run(database_facts(base, database)))

        step(f"starting uvicorn with {args.workers} worker(s)")
        server, base_url = start_server(args, database_url, workdir / "objects", log_path)
        asyncio.run(wait_healthy(server, base_url, log_path))
        report["server"] = {"base_url": base_url, "workers": args.workers, "pid": server.pid}

        step(f"logging in {args.concurrency} reporters")
        logins = asyncio.run(login_reporters(base_url, args.concurrency))
        per_client = plan_uploads(args)
        rows = per_client * args.concurrency * args.photos_per_report
        step(f"inserting {rows} uploads ({per_client} submissions per client)")
        groups = asyncio.run(create_uploads(base, database, [r for _, r in logins], per_client, args.photos_per_report))
        report["config"]["planned_submissions_per_client"] = per_client
        asyncio.run(checkpoint(base, database))

        step(f"load: {args.concurrency} clients, {args.warmup:g} s warmup + {args.duration:g} s measured")
        spec = LoadSpec(base_url, [t for t, _ in logins], groups, args.warmup, args.duration, args.request_timeout)
        load, sampled = asyncio.run(drive_load(args, base, database, server.pid, spec))
        results = summarize(load, args.warmup, args.duration)
        results["exhausted_clients"] = load["exhausted_clients"]
        results["error_samples"] = load["error_samples"]
        results["loadgen_cpu_seconds"] = load["cpu_seconds"]
        if load["window_cpu_cores"] is not None and "cpu" in sampled:
            # The load generator's own account of the window is exact; psutil may miss it if it already exited.
            cores = sampled["cpu"]["cores_used"]
            cores["other processes"] += cores["load generator"] - load["window_cpu_cores"]
            cores["load generator"] = load["window_cpu_cores"]
        if "cpu" in sampled and results["completed"]:
            # CPU time each process group spent per completed submission (ms), over the measured window.
            sampled["cpu"]["ms_per_submission"] = {
                group: 1000 * cores * args.duration / results["completed"]
                for group, cores in sampled["cpu"]["cores_used"].items()
                if group in ("server", "postgres", "load generator")
            }
        results["loadgen_elapsed_s"] = load["elapsed"]
        report["results"] = results
        report["sampled"] = sampled

        stop_process_group(server)
        report["server"]["log"] = scan_server_log(log_path)
        report["stored"] = asyncio.run(stored_counts(base, database))

        if not args.no_pgbench:
            step(f"pgbench: single-row INSERT into reports, {args.pgbench_clients} clients")
            asyncio.run(checkpoint(base, database))
            pgbench = run_pgbench(args, base, database, logins[0][1], workdir)
            pgbench["ratio"] = results["rps"] / pgbench["tps"] if pgbench["tps"] else math.nan
            report["pgbench"] = pgbench
        report["machine"]["loadavg_end"] = os.getloadavg()
        return report
    finally:
        # No second Ctrl-C half-way through the clean-up: it is short and bounded.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_process_group(server)
        if created:
            with contextlib.suppress(Exception):
                asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        shutil.rmtree(workdir, ignore_errors=True)


def step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def print_report(report: dict[str, Any], json_path: Path | None) -> None:
    sys.stderr.flush()
    machine, config, results = report["machine"], report["config"], report["results"]
    latency = results["latency_ms"]
    sampled = report.get("sampled", {})
    print()
    print(f"submit_reports: POST /v1/reports, PostgreSQL {report['database'].get('server_version', '?')}")
    print(
        f"  machine      nproc {machine['nproc']}, Python {machine['python']}, "
        f"load avg {machine['loadavg_start'][0]:.2f} at start, {machine.get('loadavg_end', [math.nan])[0]:.2f} at end"
    )
    print(
        f"  server       uvicorn --workers {config['workers']} ({machine['uvicorn_stack']}), "
        f"pool_size {config['pool_size']} (+ as many overflow) per worker"
    )
    print(
        f"  load         concurrency {config['concurrency']} (one httpx process, HTTP/1.1 keep-alive), "
        f"{config['warmup_s']:g} s warmup + {config['duration_s']:g} s measured, "
        f"{config['photos_per_report']} photo(s)/report"
    )
    print(f"  completed    {results['completed']} submissions = {results['rps']:.1f}/s")
    errors = ", ".join(f"{k}: {v}" for k, v in results["errors"].items()) or "none"
    print(f"  errors       {errors}")
    print(
        f"  latency ms   p50 {latency['p50']:.1f}  p95 {latency['p95']:.1f}  p99 {latency['p99']:.1f}  "
        f"max {latency['max']:.1f}  (mean {latency['mean']:.1f})"
    )
    per_second = results["per_second"]
    if per_second:
        print(f"  per second   min {min(per_second)}  max {max(per_second)}  {per_second}")
    cpu = sampled.get("cpu")
    if cpu:
        used = ", ".join(f"{k} {v:.2f}" for k, v in cpu["cores_used"].items())
        print(
            f"  cpu          machine {cpu['machine_busy_pct']:.0f}% busy, iowait {cpu['machine_iowait_pct']:.0f}%; "
            f"cores used: {used}"
        )
        if cpu.get("ms_per_submission"):
            per = ", ".join(f"{k} {v:.1f}" for k, v in cpu["ms_per_submission"].items())
            print(f"  cpu/request  ms of CPU per submission: {per}")
    if sampled.get("samples"):
        print(
            f"  pg backends  {sampled['avg_in_transaction']:.1f} in a transaction on average "
            f"({sampled['samples']} samples); what they wait on, and their current or last query:"
        )
        for wait in sampled["waits"][:6]:
            print(f"               {wait['avg_backends']:5.1f}  {wait['wait']:<28} {wait['query']}")
        if sampled.get("ungranted_locks"):
            locks = ", ".join(f"{k} {v:.1f}" for k, v in sampled["ungranted_locks"].items())
            print(f"  lock waits   avg backends waiting: {locks}")
        if sampled.get("lock_contended_share"):
            print(
                f"  contention   some backend waited on a lock in {100 * sampled['lock_contended_share']:.0f}% of "
                "samples; the lock holders were:"
            )
        for holder in sampled.get("lock_holders", [])[:4]:
            print(
                f"  lock holder  {100 * holder['share_of_samples']:3.0f}% of samples  {holder['state']:<20} "
                f"{holder['query']}"
            )
    if "pg_stat_database" in sampled:
        stats = sampled["pg_stat_database"]
        print(
            f"  pg xacts     commits {stats['xact_commit']}, rollbacks {stats['xact_rollback']}, "
            f"deadlocks {stats['deadlocks']} (measured window)"
        )
    if results["exhausted_clients"]:
        print(f"  WARNING      {results['exhausted_clients']} clients ran out of uploads: raise --max-rps")
    log = report.get("server", {}).get("log", {})
    if log.get("messages"):
        print(f"  server log   levels {log['levels']}, tracebacks {log['tracebacks']}")
        for message, count in list(log["messages"].items())[:5]:
            print(f"               {count} x {message[:150]}")
    stored = report.get("stored")
    if stored:
        print(
            f"  stored       {stored['reports']} reports for {results['created_total']} answers 201 "
            f"(incl. warmup and tail)"
        )
    pgbench = report.get("pgbench")
    if pgbench:
        print(
            f"  pgbench      single-row INSERT into reports: {pgbench['tps']:.0f} tps "
            f"({pgbench['clients']} clients, -j 2, {pgbench['duration']} s, "
            f"avg latency {pgbench['latency_avg_ms']} ms)"
        )
        print(f"  ratio        submissions/s / pgbench tps = {pgbench['ratio']:.3f}")
    if json_path:
        print(f"  json         {json_path.relative_to(ROOT)}")


def write_json(report: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"submit_reports-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="an existing loopback PostgreSQL database to connect to; the scratch database is made beside it",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent closed-loop clients (default 32)")
    parser.add_argument("--duration", type=float, default=10, help="measured seconds (default 10)")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds first (default 3)")
    parser.add_argument("--photos-per-report", type=int, default=1, help="upload ids per submission (default 1)")
    parser.add_argument(
        "--pool-size", type=int, help="HAZARD_DATABASE__POOL_SIZE per worker (default: the app's default)"
    )
    parser.add_argument(
        "--max-rps",
        type=int,
        default=2000,
        help="submissions/s to prepare uploads for; a client that runs out stops (default 2000)",
    )
    parser.add_argument("--request-timeout", type=float, default=30, help="per-request timeout, s (default 30)")
    parser.add_argument("--no-pgbench", action="store_true", help="skip the pgbench ceiling measurement")
    parser.add_argument("--pgbench-clients", type=int, default=16, help="pgbench -c (default 16)")
    parser.add_argument("--pgbench-duration", type=int, help="pgbench -T in s (default: --duration)")
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()

    def terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    # Explicitly, so that Ctrl-C works even where SIGINT was inherited as ignored (a background job).
    signal.signal(signal.SIGINT, terminate)
    signal.signal(signal.SIGTERM, terminate)
    try:
        report = run(args)
    except BenchError as exc:
        print(f"submit_reports: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("submit_reports: interrupted; cleaned up", file=sys.stderr)
        return 130
    path = write_json(report)
    print_report(report, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
