"""CPU per request, in-process: the app called as ASGI, one request at a time.

    .venv/bin/python bench/request_cpu.py                      # queue (first, cursor) and my reports, on bench_load_1m
    .venv/bin/python bench/request_cpu.py --requests 500 --only queue_first
    .venv/bin/python bench/request_cpu.py --profile queue_first    # cProfile of that endpoint, top functions
    .venv/bin/python bench/request_cpu.py --only submit        # POST /v1/reports, as bench/load.py sends it

The figure is ``time.process_time()`` of this process around each request (the app's Python, SQLAlchemy, asyncpg
and the event loop; not uvicorn's HTTP parsing), which a shared, noisy machine disturbs far less than wall time.
Medians are quoted. PostgreSQL's own CPU is shown apart, as the mean over the run of its server processes serving
the database. The database is the cached one of bench/load.py (1,000,000 cases);
it is only read, except that the reporter's dev login and bench/load.py's give_reports give that reporter 50 cases.
Submissions (``submit``) go to a scratch database of their own, migrated and seeded, dropped at the end: each
request posts bench/load.py's body with a fresh upload of its own and an idempotency key.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import hashlib
import json
import os
import pstats
import random
import statistics
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import load  # noqa: E402  (bench/ is not a package)
import submit_reports as sr  # noqa: E402

ENDPOINTS = ("queue_first", "queue_cursor", "my_reports", "submit")
SUBMIT_DATABASE = "bench_request_cpu"


async def call(
    app: Any, path: str, token: str, body: bytes = b"", headers: tuple[tuple[bytes, bytes], ...] = ()
) -> tuple[int, bytes]:
    """One request through the ASGI interface, as uvicorn would make it: a GET, or a POST of ``body``."""
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST" if body else "GET",
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode()), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


Send = Callable[[], Awaitable[tuple[int, bytes]]]


async def measure(args: argparse.Namespace) -> None:
    chosen = [args.profile] if args.profile else args.only.split(",") if args.only else list(ENDPOINTS)
    reads = [name for name in chosen if name != "submit"]
    if reads:
        await measure_reads(args, reads)
    if "submit" in chosen:
        await measure_submit(args)


async def measure_reads(args: argparse.Namespace, chosen: list[str]) -> None:
    import httpx
    from sqlalchemy import make_url

    from app.demo.seed import DEMO_STAFF

    base = make_url(sr.DEFAULT_DATABASE_URL)
    database = load.cache_name(1_000_000)
    app = make_app(sr._url(base, database))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            staff = next(s for s in DEMO_STAFF if s.username == load.INSPECTOR)
            response = await client.post(
                "/v1/auth/staff/login", json={"username": staff.username, "password": staff.password}
            )
            inspector = response.json()["access_token"]
            response = await client.post("/v1/auth/wechat/login", json={"code": "dev:bench0"})
            reporter, reporter_id = response.json()["access_token"], response.json()["reporter_id"]
        await load.give_reports(base, database, reporter_id, load.MY_REPORTS)
        _, first = await call(app, "/v1/staff/cases", inspector)
        cursor = json.loads(first)["next_cursor"]
        paths = {
            "queue_first": ("/v1/staff/cases", inspector),
            "queue_cursor": ("/v1/staff/cases?" + urllib.parse.urlencode({"cursor": cursor}), inspector),
            "my_reports": ("/v1/me/reports", reporter),
        }
        for name in chosen:
            path, token = paths[name]
            await timed(args, name, database, 200, functools.partial(call, app, path, token))


async def measure_submit(args: argparse.Namespace) -> None:
    """POST /v1/reports with bench/load.py's body, each with a fresh upload, on a scratch database."""
    import httpx
    from sqlalchemy import make_url

    base = make_url(sr.DEFAULT_DATABASE_URL)
    url = sr._url(base, SUBMIT_DATABASE)
    drop = f'DROP DATABASE IF EXISTS "{SUBMIT_DATABASE}" WITH (FORCE)'
    await sr._admin(base, drop, f'CREATE DATABASE "{SUBMIT_DATABASE}"')
    try:
        workdir = Path("/tmp/request_cpu_objects")
        await asyncio.to_thread(load._cli, ["migrate"], url, workdir)
        await asyncio.to_thread(load._cli, ["seed-demo"], url, workdir)
        app = make_app(url)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                response = await client.post("/v1/auth/wechat/login", json={"code": "dev:bench0"})
                token, reporter_id = response.json()["access_token"], response.json()["reporter_id"]
            count = args.warmup + args.requests
            made = await sr.create_uploads(base, SUBMIT_DATABASE, [reporter_id], count, 1)
            uploads = iter([ids[0] for ids in made[0]])
            parts = load.submit_body_parts((datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds"))
            spread = random.Random(7)

            async def submit() -> tuple[int, bytes]:
                # Spread as load.lua does, so that duplicate candidates stay as few as under load.
                lon, lat = (parts[k] + (spread.random() * 2 - 1) * parts["spread"] for k in ("lon", "lat"))
                point = f'"longitude":{lon:.6f},"latitude":{lat:.6f}'
                upload_id = next(uploads)
                body = parts["body_prefix"] + point + parts["body_middle"] + f'"{upload_id}"' + parts["body_suffix"]
                headers = ((b"content-type", b"application/json"), (b"idempotency-key", upload_id.encode()))
                return await call(app, "/v1/reports", token, body.encode(), headers)

            await timed(args, "submit", SUBMIT_DATABASE, 201, submit)
    finally:
        await sr._admin(base, drop)


def make_app(database_url: str) -> Any:
    from app.main import create_app

    os.environ.update(load.api_env(database_url, Path("/tmp/request_cpu_objects"), embedded_worker=False))
    os.environ["HAZARD_PUBLIC_BASE_URL"] = "http://127.0.0.1:8000"
    return create_app()


async def timed(args: argparse.Namespace, name: str, database: str, expected: int, send: Send) -> None:
    """Warm up, then time ``args.requests`` requests one at a time; print the medians (and the profile)."""
    for _ in range(args.warmup):
        await send()
    cpu, wall = [], []
    database_started = await database_cpu(database)
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    for _ in range(args.requests):
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        status, body = await send()
        if profiler:
            profiler.disable()
        cpu.append(1000 * (time.process_time() - started_cpu))
        wall.append(1000 * (time.perf_counter() - started_wall))
        if status != expected:
            raise SystemExit(f"{name}: {status} {body[:300]!r}")
    database_ms = 1000 * (await database_cpu(database) - database_started) / args.requests
    print(
        f"{name:<13} cpu ms median {statistics.median(cpu):6.2f}  p90 {quantile(cpu, 0.9):6.2f}   "
        f"PostgreSQL cpu ms mean {database_ms:5.2f}   wall ms median {statistics.median(wall):6.2f}   "
        f"({args.requests} requests, {len(body)} bytes, "
        f"sha256 {hashlib.sha256(body).hexdigest()[:12]}, of the sorted JSON {canonical_hash(body)})"
    )
    if profiler:
        stats = pstats.Stats(profiler).strip_dirs().sort_stats(args.sort)
        stats.print_stats(args.top)


async def database_cpu(database: str) -> float:
    """CPU seconds used so far by the server processes serving ``database`` (on this host; the pool's connections
    live as long as the app, so the difference over a run is what its requests cost PostgreSQL)."""
    import asyncpg
    import psutil

    connection = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        pids = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", database
        )
    finally:
        await connection.close()
    total = 0.0
    for row in pids:
        try:
            times = psutil.Process(row["pid"]).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def canonical_hash(body: bytes) -> str:
    """The same answer in another key order hashes the same."""
    return hashlib.sha256(json.dumps(json.loads(body), sort_keys=True).encode()).hexdigest()[:12]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--only", help=f"comma-separated, of {', '.join(ENDPOINTS)}")
    parser.add_argument("--profile", choices=ENDPOINTS, help="cProfile this endpoint and print the top functions")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key (cumulative, tottime)")
    parser.add_argument("--top", type=int, default=45)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(measure(args))
    except ImportError:
        asyncio.run(measure(args))


if __name__ == "__main__":
    main()
