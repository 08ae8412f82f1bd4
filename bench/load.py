"""Load on this machine in one run: its ceilings, then our endpoints at saturation and at a constant 60% of it.

    make bench-load                      # the full run (~12 min; the first time, plus 5-15 min to generate 1M cases)
    make bench-load ARGS=--quick         # a smoke run of ~5 min (50,000 cases, 1 s warm-up, 5 s windows)
    .venv/bin/python bench/load.py --duration 20 --warmup 5 --regenerate
    .venv/bin/python bench/load.py --only hello,queue,my_reports --duration 10 --warmup 3   # some parts only

What it does, all on loopback, every step bounded in time:

1. records the machine: nproc, CPU model, RAM, load average, git commit, PostgreSQL and wrk versions;
2. ceilings: a bare ASGI hello-world (``hello_app`` below) under uvicorn with the API's server options (uvloop +
   httptools when installed, 2 workers), loaded with wrk; pgbench single-row INSERTs into ``reports``
   (bench/submit_reports.py's script); Pillow decode + re-encode (JPEG quality 85) of a 12-megapixel photo on 2
   processes, and our own pipeline ``app.intake.imaging.process_image`` on the same photo, also on 2 processes;
3. endpoints, each with wrk (bench/load.lua) closed-loop at saturation (warm-up, then the measured window), then
   paced at 60% of the measured saturation rate: POST /v1/reports and POST /v1/uploads on a fresh scratch
   database (``bench_load_run_<pid>``, the demo reference data seeded, so reports are routed as in production); the
   inspector's queue (first page and a cursor page) and GET /v1/me/reports on the cached database of 1,000,000
   generated cases (``bench_load_1m``, bench/dashboard.py's generator, reused while it matches the migration head);
   then the embedded mode (SQLite, one process, embedded worker on) paced at 200 submissions/s, and at saturation;
4. prints a table and writes every figure, each endpoint's ratio to its ceiling and PASS/FAIL against the targets
   of issue 7 to ``bench/results/load-<timestamp>.json``;
5. drops its scratch database and stops its servers, also on failure and Ctrl-C; the cached 1M database is kept
   (``--drop-cache`` drops it at the end).

wrk, the servers, PostgreSQL and the Pillow processes share the same cores: wrk's own CPU is part of every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import submit_reports as sr  # noqa: E402  (bench/ is not a package; its helpers are reused, not copied)

WRK_SCRIPT = BENCH / "load.lua"
JOLLA = ROOT.parent / "shared" / "data" / "photos" / "jpg" / "mobile" / "jolla.jpg"  # ../shared, as in README
PHOTO_SIZE = (4000, 3000)  # 12 megapixels
PHOTO_QUALITY = 90
REENCODE_QUALITY = 85
CACHE_PREFIX = "bench_load_"
SCRATCH_DATABASE = f"bench_load_run_{os.getpid()}"
INSPECTOR = "inspector"  # a demo staff account (app/demo/seed.py): its password and department come from there
MY_REPORTS = 50
PACE_SHARE = 0.6
SQLITE_RATE = 200.0
WRK_SLACK_SECONDS = 60
LOCK_ERRORS = re.compile(r"database is locked|database table is locked|SQLITE_BUSY|SQLITE_LOCKED", re.IGNORECASE)
BOUNDARY = "----benchload7MA4YWxkTrZu0gW"
# What a run measures (--only picks some): the ceilings (ASGI hello, Pillow and process_image), the scratch
# database's endpoints (pgbench, submissions, uploads), the generated cases' endpoints, and the embedded mode.
PARTS = ("hello", "pillow", "submit", "queue", "my_reports", "sqlite")

TARGETS = {
    "submit_vs_pgbench": 0.06,
    "submit_vs_pgbench_aim": 0.10,
    "queue_p99_ms": 50.0,
    "upload_vs_pillow": 0.6,
    "sqlite_rate": SQLITE_RATE,
    "sqlite_p99_ms": 100.0,
}
# The paced SQLite run passes when it achieved this share of 200/s (the pacing rounds each wait to the millisecond).
SQLITE_RATE_TOLERANCE = 0.975


# --- the ASGI hello-world ceiling ----------------------------------------------------------------------------------


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least an ASGI app can do: what uvicorn alone costs per request on this machine."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


# --- pure helpers (tests/unit/test_bench_load.py) ------------------------------------------------------------------


def parse_wrk_output(text: str) -> dict[str, Any]:
    """The JSON line bench/load.lua's done() prints, with the derived figures: rates, milliseconds, errors."""
    line = next((ln for ln in text.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise sr.BenchError(f"no WRK_JSON line in wrk's output:\n{text[-2000:]}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    seconds = raw["duration_us"] / 1e6
    statuses = {str(int(float(k))): int(v) for k, v in raw["statuses"].items()}
    ok = sum(v for k, v in statuses.items() if k.startswith("2"))
    percentiles = raw["latency_us"]["percentiles"]
    socket_errors = {k: int(v) for k, v in raw["socket_errors"].items() if int(v)}
    return {
        "seconds": seconds,
        "requests": raw["requests"],
        "rps": raw["requests"] / seconds if seconds else math.nan,
        "ok": ok,
        "ok_rps": ok / seconds if seconds else math.nan,
        "statuses": dict(sorted(statuses.items())),
        "non_2xx": sum(v for k, v in statuses.items() if not k.startswith("2")),
        "socket_errors": socket_errors,
        "latency_ms": {
            "p50": _ms(percentiles, "50"),
            "p90": _ms(percentiles, "90"),
            "p95": _ms(percentiles, "95"),
            "p99": _ms(percentiles, "99"),
            "p99.9": _ms(percentiles, "99.9"),
            "mean": raw["latency_us"]["mean"] / 1000,
            "max": raw["latency_us"]["max"] / 1000,
        },
        "wrapped": raw.get("wrapped", 0),
        "error_samples": raw.get("error_samples", []),
    }


def _ms(percentiles: dict[str, float], key: str) -> float:
    value = percentiles.get(key)
    if value is None:  # Lua may print 99.9 as "99.900000000000006"
        value = next((v for k, v in percentiles.items() if math.isclose(float(k), float(key))), math.nan)
    return float(value) / 1000


def jpeg_comment_offset(data: bytes) -> int:
    """Where a COM segment can go: after SOI and the APPn segments (JFIF, EXIF, XMP), before the tables."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    offset = 2
    while data[offset] == 0xFF and 0xE0 <= data[offset + 1] <= 0xEF:
        offset += 2 + int.from_bytes(data[offset + 2 : offset + 4], "big")
    return offset


def lua_literal(value: Any) -> str:
    """A Lua literal for a str, number, bool or flat dict (the config load.lua reads)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
        return f'"{escaped}"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Lua literal for {type(value).__name__}")


def ratio(value: float | None, ceiling: float | None) -> float:
    if value is None or not ceiling or math.isnan(value) or math.isnan(ceiling):
        return math.nan
    return value / ceiling


def verdicts(figures: dict[str, Any], cases_stored: int) -> dict[str, dict[str, Any]]:
    """PASS/FAIL against the targets of issue 7, from the figures of one run (missing parts are "n/a")."""
    out: dict[str, dict[str, Any]] = {}

    def record(name: str, target: str, value: float | None, passed: bool | None, note: str = "") -> None:
        verdict = "n/a" if passed is None or value is None or math.isnan(value) else ("PASS" if passed else "FAIL")
        out[name] = {"target": target, "value": value, "verdict": verdict, **({"note": note} if note else {})}

    submit = figures.get("submit_vs_pgbench")
    record(
        "submit",
        f"POST /v1/reports at saturation >= {TARGETS['submit_vs_pgbench']} x pgbench INSERT tps "
        f"(aim {TARGETS['submit_vs_pgbench_aim']})",
        submit,
        None if submit is None else submit >= TARGETS["submit_vs_pgbench"],
        ""
        if submit is None or math.isnan(submit)
        else f"aim {'met' if submit >= TARGETS['submit_vs_pgbench_aim'] else 'not met'}",
    )
    queue = [figures.get("queue_first_paced_p99_ms"), figures.get("queue_cursor_paced_p99_ms")]
    worst = None if any(v is None for v in queue) else max(queue)
    record(
        "inspector queue",
        f"p99 < {TARGETS['queue_p99_ms']:g} ms (first and cursor page, paced at 60%) with 1,000,000 cases stored",
        worst,
        None if worst is None or cases_stored < 1_000_000 else worst < TARGETS["queue_p99_ms"],
        "" if cases_stored >= 1_000_000 else f"only {cases_stored:,} cases stored: not the target's condition",
    )
    upload = figures.get("upload_vs_pillow")
    record(
        "photo upload",
        f"POST /v1/uploads at saturation >= {TARGETS['upload_vs_pillow']} x Pillow 12 MP re-encode rate",
        upload,
        None if upload is None else upload >= TARGETS["upload_vs_pillow"],
    )
    rate, p99 = figures.get("sqlite_paced_ok_rps"), figures.get("sqlite_paced_p99_ms")
    errors, locks = figures.get("sqlite_paced_errors"), figures.get("sqlite_lock_lines")
    sqlite_ok = None
    if None not in (rate, p99, errors, locks):
        sqlite_ok = (
            rate >= SQLITE_RATE_TOLERANCE * TARGETS["sqlite_rate"]
            and p99 < TARGETS["sqlite_p99_ms"]
            and errors == 0
            and locks == 0
        )
    record(
        "embedded SQLite",
        f"{TARGETS['sqlite_rate']:g} submissions/s paced: achieved >= {SQLITE_RATE_TOLERANCE:.1%} of it, "
        f"p99 < {TARGETS['sqlite_p99_ms']:g} ms, no errors, no lock errors in the log",
        p99,
        sqlite_ok,
        "" if rate is None else f"achieved {rate:.1f}/s, errors {errors}, lock lines {locks}",
    )
    return out


# --- wrk -----------------------------------------------------------------------------------------------------------


def wrk_binary() -> str:
    binary = shutil.which("wrk")
    if binary is None:
        raise sr.BenchError("wrk not found: apt-get install -y wrk (make bench-load does it)")
    return binary


def run_wrk(
    base_url: str,
    config: dict[str, Any],
    *,
    seconds: float,
    connections: int,
    threads: int,
    workdir: Path,
    pace_rps: float = 0.0,
    timeout_s: float = 30.0,
) -> dict[str, Any]:
    """One wrk run with bench/load.lua; closed loop unless pace_rps."""
    config = {**config, "pace_rps": float(pace_rps), "threads": threads}
    config_path = workdir / f"wrk-{uuid.uuid4().hex[:8]}.lua"
    config_path.write_text("return " + lua_literal(config) + "\n", encoding="utf-8")
    command = [
        wrk_binary(),
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        f"{timeout_s:g}s",
        "-s",
        str(WRK_SCRIPT),
        base_url,
        "--",
        str(config_path),
    ]
    env = {**os.environ, "BENCH_LOAD_PACED": "1" if pace_rps else "0"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=seconds + WRK_SLACK_SECONDS)
    except subprocess.TimeoutExpired as exc:
        raise sr.BenchError(f"wrk did not finish within {seconds + WRK_SLACK_SECONDS:.0f} s") from exc
    finally:
        sr.stop_process_group(process)
    if process.returncode != 0:
        raise sr.BenchError(f"wrk failed ({process.returncode}):\n{output[-2000:]}")
    result = parse_wrk_output(output)
    result.update({"connections": connections, "threads": threads, "pace_rps": pace_rps or None})
    return result


ConfigFor = Callable[[str, float, float], dict[str, Any]]  # (phase, highest rate to prepare for, seconds) → config


def measure_endpoint(
    name: str,
    base_url: str,
    config_for: ConfigFor,
    args: argparse.Namespace,
    workdir: Path,
    *,
    connections: int,
    settle: Callable[[], float] = lambda: 0.0,
) -> dict[str, Any]:
    """Warm-up and saturation (closed loop), then paced at 60% of the saturation rate; ``settle`` after each."""
    wrk = {"threads": args.threads, "workdir": workdir, "connections": connections, "timeout_s": args.request_timeout}
    settled: list[float] = []
    if args.warmup:
        sr.step(f"{name}: warm-up {args.warmup:g} s, {connections} connections")
        run_wrk(base_url, config_for("warmup", args.max_rps, args.warmup), seconds=args.warmup, **wrk)
        settled.append(settle())
    sr.step(f"{name}: saturation {args.duration:g} s")
    saturation = run_wrk(base_url, config_for("saturation", args.max_rps, args.duration), seconds=args.duration, **wrk)
    settled.append(settle())
    target = PACE_SHARE * saturation["ok_rps"]
    out = {"saturation": saturation, "paced_target_rps": target, "settle_s": settled}
    if target < 0.5:
        out["paced"] = None
        return out
    wrk["connections"] = paced_connections(target, args.threads, connections)
    sr.step(
        f"{name}: paced at {target:.1f}/s ({PACE_SHARE:.0%} of {saturation['ok_rps']:.1f}/s) {args.duration:g} s, "
        f"{wrk['connections']} connections"
    )
    out["paced"] = run_wrk(
        base_url, config_for("paced", target * 1.2 + 5, args.duration), seconds=args.duration, pace_rps=target, **wrk
    )
    settled.append(settle())
    return out


def settler(base: Any, database: str, limit_s: float = 120) -> Callable[[], float]:
    """Waits until ``database`` runs no query: when a window ends wrk closes its connections, but the server still
    finishes their requests, and their queries would otherwise run into the next window."""

    async def active() -> int:
        connection = await sr._connect(base, base.database or "postgres")
        try:
            return int(
                await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state = 'active'", database
                )
            )
        finally:
            await connection.close()

    def settle() -> float:
        started = time.monotonic()
        while asyncio.run(active()) and time.monotonic() - started < limit_s:
            time.sleep(0.5)
        waited = time.monotonic() - started
        if waited > 2:
            sr.step(f"waited {waited:.0f} s for {database} to finish the last window's queries")
        return waited

    return settle


def paced_connections(rate: float, threads: int, most: int) -> int:
    """Enough connections for the paced rate and no more: each is reused within about 3 s, well inside uvicorn's
    5 s keep-alive timeout (a connection the server closes while idle shows in wrk as a read error)."""
    return max(threads, min(most, threads + math.ceil(3 * rate)))


def get_config(path: str, token: str = "") -> ConfigFor:
    return lambda _phase, _rate, _seconds: {"mode": "get", "path": path, "token": token}


# --- servers -------------------------------------------------------------------------------------------------------


def serve(app: list[str], workers: int, env_overrides: dict[str, str], log_path: Path) -> tuple[Any, str]:
    """uvicorn with the API's options (Dockerfile: 2 workers; uvloop + httptools picked when installed)."""
    port = sr.free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZARD_")}
    env.update({**env_overrides, "HAZARD_PUBLIC_BASE_URL": base_url})
    command = [sys.executable, "-m", "uvicorn", *app, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)] if workers > 1 else []
    command += ["--log-level", "warning", "--no-access-log"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return process, base_url


def api_env(database_url: str, storage_root: Path, *, embedded_worker: bool) -> dict[str, str]:
    return {
        "HAZARD_ENVIRONMENT": "development",
        "HAZARD_WECHAT__DEV_LOGIN": "true",
        "HAZARD_EMBEDDED_WORKER": "true" if embedded_worker else "false",
        "HAZARD_LOG_LEVEL": "WARNING",
        "HAZARD_DATABASE__URL": database_url,
        "HAZARD_STORAGE__BACKEND": "local",
        "HAZARD_STORAGE__LOCAL_ROOT": str(storage_root),
    }


API_APP = ["--factory", "app.main:create_app"]
HELLO_APP = ["--app-dir", str(BENCH), "load:hello_app"]


class Servers:
    """The servers this run started, stopped in any case."""

    def __init__(self) -> None:
        self.running: list[Any] = []

    def start(self, app: list[str], workers: int, env: dict[str, str], log_path: Path) -> tuple[Any, str]:
        process, base_url = serve(app, workers, env, log_path)
        self.running.append(process)
        asyncio.run(sr.wait_healthy(process, base_url, log_path))
        return process, base_url

    def stop(self, process: Any) -> None:
        sr.stop_process_group(process)
        with contextlib.suppress(ValueError):
            self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(self.running):
            self.stop(process)


# --- the photo and the CPU ceilings --------------------------------------------------------------------------------


def make_photo(path: Path) -> dict[str, Any]:
    """A 12-megapixel JPEG made reproducibly from the 8 MP jolla.jpg, its EXIF kept (GPS, time, camera)."""
    from PIL import Image

    with Image.open(JOLLA) as source:
        exif = source.info.get("exif", b"")
        resized = source.convert("RGB").resize(PHOTO_SIZE, Image.Resampling.LANCZOS)
    resized.save(path, "JPEG", quality=PHOTO_QUALITY, exif=exif)
    data = path.read_bytes()
    return {
        "source": str(JOLLA),
        "size": list(PHOTO_SIZE),
        "quality": PHOTO_QUALITY,
        "exif_bytes": len(exif),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "comment_offset": jpeg_comment_offset(data),
    }


def _reencode_loop(path: str, seconds: float) -> tuple[int, float]:
    from PIL import Image

    data = Path(path).read_bytes()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image.save(io.BytesIO(), "JPEG", quality=REENCODE_QUALITY)
        count += 1
    return count, time.perf_counter() - started


def _pipeline_loop(path: str, seconds: float) -> tuple[int, float]:
    from app.intake import imaging

    data = Path(path).read_bytes()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        imaging.process_image(io.BytesIO(data))
        count += 1
    return count, time.perf_counter() - started


def cpu_rate(loop: Callable[[str, float], tuple[int, float]], photo: Path, seconds: float, processes: int) -> dict:
    """Photos per second over ``processes`` processes, each looping for ``seconds``."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        result = pool.starmap_async(loop, [(str(photo), seconds)] * processes)
        runs = result.get(timeout=seconds + 120)
    return {
        "processes": processes,
        "seconds": seconds,
        "photos": sum(c for c, _ in runs),
        "per_second": sum(c / e for c, e in runs),
        "ms_per_photo_per_process": [1000 * e / c if c else math.nan for c, e in runs],
    }


# --- databases -----------------------------------------------------------------------------------------------------


def migration_head() -> str:
    from alembic.script import ScriptDirectory

    from app.core.migrate import alembic_config

    return str(ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head())


def cache_marker(reports: int, head: str) -> str:
    return f"bench_load reports={reports} head={head}"


def cache_name(reports: int) -> str:
    return f"{CACHE_PREFIX}1m" if reports == 1_000_000 else f"{CACHE_PREFIX}{reports}"


async def cache_comment(base: Any, name: str) -> str | None:
    connection = await sr._connect(base, base.database or "postgres")
    try:
        return await connection.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name
        )
    finally:
        await connection.close()


def ensure_cases(base: Any, reports: int, regenerate: bool) -> dict[str, Any]:
    """The cached database of generated cases: reused while its marker names this count and the migration head."""
    import dashboard

    name, head = cache_name(reports), migration_head()
    marker = cache_marker(reports, head)
    if not regenerate and asyncio.run(cache_comment(base, name)) == marker:
        sr.step(f"reusing {name} ({reports:,} generated cases, migration head {head})")
        return {"name": name, "reports": reports, "generated": False, "head": head}
    sr.step(f"generating {reports:,} cases in {name} with bench/dashboard.py's generator (a few minutes)")
    started = time.perf_counter()
    try:
        asyncio.run(dashboard.generate(reports, name))
        asyncio.run(sr._admin(base, f"COMMENT ON DATABASE \"{name}\" IS '{marker}'"))
    except BaseException:
        with contextlib.suppress(Exception):  # an unfinished generation is never reused
            asyncio.run(sr._admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        raise
    seconds = time.perf_counter() - started
    return {"name": name, "reports": reports, "generated": True, "generation_s": seconds, "head": head}


async def case_facts(base: Any, database: str, staff_department_code: str) -> dict[str, Any]:
    connection = await sr._connect(base, database)
    try:
        department = await connection.fetchval("SELECT id FROM departments WHERE code = $1", staff_department_code)
        rows = await connection.fetch(
            "SELECT state, count(*)::int AS n FROM reports WHERE department_id = $1 GROUP BY state ORDER BY state",
            department,
        )
        return {
            "reports": await connection.fetchval("SELECT count(*) FROM reports"),
            "case_deadlines": await connection.fetchval("SELECT count(*) FROM case_deadlines"),
            "inspector_department": staff_department_code,
            "inspector_department_by_state": {r["state"]: r["n"] for r in rows},
        }
    finally:
        await connection.close()


async def give_reports(base: Any, database: str, reporter_id: str, count: int) -> int:
    """Make ``count`` of the generated (reporter-less) cases this reporter's own, newest first."""
    connection = await sr._connect(base, database)
    try:
        have = await connection.fetchval("SELECT count(*) FROM reports WHERE reporter_id = $1", uuid.UUID(reporter_id))
        if have < count:
            await connection.execute(
                "UPDATE reports SET reporter_id = $1 WHERE id IN (SELECT id FROM reports WHERE reporter_id IS NULL "
                "ORDER BY created_at DESC LIMIT $2)",
                uuid.UUID(reporter_id),
                count - have,
            )
            await connection.execute("ANALYZE reports")
        return int(
            await connection.fetchval("SELECT count(*) FROM reports WHERE reporter_id = $1", uuid.UUID(reporter_id))
        )
    finally:
        await connection.close()


async def staff_login(base_url: str, username: str, password: str) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.post("/v1/auth/staff/login", json={"username": username, "password": password})
    if response.status_code != 200:
        raise sr.BenchError(f"staff login failed: {response.status_code} {response.text[:300]}")
    return str(response.json()["access_token"])


async def get_json(base_url: str, path: str, token: str) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 200:
        raise sr.BenchError(f"GET {path}: {response.status_code} {response.text[:300]}")
    return dict(response.json())


# --- submissions: uploads prepared straight in the database --------------------------------------------------------


def submit_body_parts(observed_at: str) -> dict[str, Any]:
    """The JSON of a submission cut around the spread point and the upload id, which load.lua fills in."""
    body = {
        "category": sr.CATEGORY,
        "hazard_kind": "accident_hazard",
        "description": sr.DESCRIPTION,
        "location": {**sr.LOCATION, "longitude": "@LON", "latitude": "@LAT"},
        "observed_at": observed_at,
        "upload_ids": ["@UPLOAD"],
    }
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    prefix, rest = text.split('"longitude":"@LON","latitude":"@LAT"')
    middle, suffix = rest.split('"@UPLOAD"')
    return {
        "body_prefix": prefix,
        "body_middle": middle,
        "body_suffix": suffix,
        "lon": sr.LOCATION["longitude"],
        "lat": sr.LOCATION["latitude"],
        "spread": sr.SPREAD_DEGREES,
    }


async def submit_one(base_url: str, token: str, upload_id: str) -> None:
    """One submission with the body load.lua sends (the first one, and a check that the body is valid)."""
    import httpx

    parts = submit_body_parts((datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds"))
    point = f'"longitude":{parts["lon"]:.6f},"latitude":{parts["lat"]:.6f}'
    body = parts["body_prefix"] + point + parts["body_middle"] + f'"{upload_id}"' + parts["body_suffix"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": upload_id}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        response = await client.post("/v1/reports", content=body.encode(), headers=headers)
    if response.status_code != 201:
        raise sr.BenchError(f"the first submission failed: {response.status_code} {response.text[:500]}")


def write_items(workdir: Path, tag: str, per_thread: list[list[str]]) -> str:
    prefix = workdir / f"items-{tag}-"
    for index, lines in enumerate(per_thread):
        Path(f"{prefix}{index}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(prefix)


def deal(lines: list[str], threads: int) -> list[list[str]]:
    """Round-robin, so that each wrk thread gets every reporter's lines in turn."""
    return [lines[i::threads] for i in range(threads)]


def interleave(groups: list[list[str]]) -> list[str]:
    longest = max((len(g) for g in groups), default=0)
    return [g[i] for i in range(longest) for g in groups if i < len(g)]


def submit_config(
    args: argparse.Namespace,
    workdir: Path,
    logins: list[tuple[str, str]],
    make_uploads: Callable[[list[str], int], list[list[str]]],
) -> ConfigFor:
    """Each phase gets its own fresh, unattached uploads (owned by the reporter whose token posts them)."""
    observed_at = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")

    def config(phase: str, rate: float, seconds: float) -> dict[str, Any]:
        needed = math.ceil(rate * seconds) + 64
        per_reporter = math.ceil(needed / len(logins))
        ids = make_uploads([r for _, r in logins], per_reporter)
        lines = interleave(
            [[f"{token} {upload_id}" for upload_id in own] for (token, _), own in zip(logins, ids, strict=True)]
        )
        prefix = write_items(workdir, f"submit-{phase}-{uuid.uuid4().hex[:6]}", deal(lines, args.threads))
        return {"mode": "submit", "path": "/v1/reports", "items": prefix, **submit_body_parts(observed_at)}

    return config


def postgres_uploads(base: Any, database: str) -> Callable[[list[str], int], list[list[str]]]:
    def make(reporter_ids: list[str], per_reporter: int) -> list[list[str]]:
        groups = asyncio.run(sr.create_uploads(base, database, reporter_ids, per_reporter, 1))
        return [[ids[0] for ids in client] for client in groups]

    return make


def sqlite_uploads(database_url: str) -> Callable[[list[str], int], list[list[str]]]:
    """The same rows as submit_reports.create_uploads, through SQLAlchemy (SQLite has no COPY)."""

    async def insert(rows: list[dict[str, Any]]) -> None:
        from sqlalchemy import insert as sql_insert
        from sqlalchemy.ext.asyncio import create_async_engine

        from app.intake.models import Upload

        engine = create_async_engine(database_url, connect_args={"timeout": 30})
        try:
            async with engine.begin() as connection:
                await connection.execute(sql_insert(Upload), rows)
        finally:
            await engine.dispose()

    def make(reporter_ids: list[str], per_reporter: int) -> list[list[str]]:
        now = datetime.now(UTC)
        rows, groups = [], []
        for reporter_id in reporter_ids:
            ids = [uuid.uuid4() for _ in range(per_reporter)]
            groups.append([str(i) for i in ids])
            for upload_id in ids:
                base_key = f"uploads/{upload_id}"
                rows.append(
                    {
                        "id": upload_id,
                        "owner": f"reporter:{reporter_id}",
                        "sha256": upload_id.hex * 2,
                        "perceptual_hash": upload_id.hex[:16],
                        "size_bytes": 1_500_000,
                        "format": "jpeg",
                        "mime_type": "image/jpeg",
                        "width": PHOTO_SIZE[0],
                        "height": PHOTO_SIZE[1],
                        "original_key": f"{base_key}/original.jpeg",
                        "display_key": f"{base_key}/display.jpg",
                        "thumbnail_key": f"{base_key}/thumbnail.jpg",
                        "exif_captured_at": now - timedelta(hours=1),
                        "exif_longitude": sr.PHOTO_LONGITUDE,
                        "exif_latitude": sr.PHOTO_LATITUDE,
                        "report_id": None,
                        "position": None,
                        "created_at": now - timedelta(minutes=5),
                    }
                )
        asyncio.run(insert(rows))
        return groups

    return make


def upload_config(workdir: Path, logins: list[tuple[str, str]], photo: Path, split: int, threads: int) -> ConfigFor:
    prefix = write_items(workdir, "upload", deal([token for token, _ in logins], threads))
    config = {
        "mode": "upload",
        "path": "/v1/uploads",
        "items": prefix,
        "photo": str(photo),
        "photo_split": split,
        "boundary": BOUNDARY,
    }
    return lambda _phase, _rate, _seconds: config


# --- machine facts -------------------------------------------------------------------------------------------------


def machine(base: Any) -> dict[str, Any]:
    facts = sr.machine_facts()
    with contextlib.suppress(OSError, StopIteration):
        line = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        facts["ram_gib"] = round(int(line.split()[1]) / 1024**2, 1)
    facts["git_commit"] = _command(["git", "rev-parse", "HEAD"])
    facts["git_dirty"] = bool(_command(["git", "status", "--porcelain", "--untracked-files=no"]))
    facts["wrk"] = _command([wrk_binary(), "-v"]).splitlines()[0]
    facts["postgresql"] = asyncio.run(_server_version(base))
    return facts


def _command(command: list[str]) -> str:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    return (result.stdout or result.stderr).strip()


async def _server_version(base: Any) -> str:
    connection = await sr._connect(base, base.database or "postgres")
    try:
        return str(await connection.fetchval("SELECT version()"))
    finally:
        await connection.close()


# --- the run -------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import make_url

    base = make_url(sr.DEFAULT_DATABASE_URL)
    report: dict[str, Any] = {
        "benchmark": "load",
        "argv": sys.argv[1:],
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            k: getattr(args, k)
            for k in ("warmup", "duration", "connections", "upload_connections", "threads", "workers", "reports")
        },
        "machine": machine(base),
    }
    report["config"]["pace_share"] = PACE_SHARE
    report["config"]["parts"] = [part for part in PARTS if part in args.only]
    servers = Servers()
    scratch_created = False
    workdir = Path(tempfile.mkdtemp(prefix="bench_load_"))
    started = time.monotonic()
    try:
        photo = workdir / "photo-12mp.jpg"
        report["photo"] = make_photo(photo)

        # --- ceilings ---
        if "hello" in args.only:
            sr.step("ceiling: ASGI hello-world under uvicorn")
            hello, hello_url = servers.start(HELLO_APP, args.workers, {}, workdir / "hello.log")
            report["hello"] = measure_endpoint(
                "hello", hello_url, get_config("/"), args, workdir, connections=args.connections
            )
            servers.stop(hello)

        if "pillow" in args.only:
            sr.step(f"ceiling: Pillow decode + re-encode of the 12 MP photo, {args.workers} processes")
            report["pillow"] = cpu_rate(_reencode_loop, photo, args.cpu_seconds, args.workers)
            sr.step(f"ceiling: app.intake.imaging.process_image on the 12 MP photo, {args.workers} processes")
            report["process_image"] = cpu_rate(_pipeline_loop, photo, args.cpu_seconds, args.workers)

        if "submit" in args.only:
            scratch_created = True
            measure_scratch(args, servers, workdir, photo, report)
            scratch_created = False

        if "queue" in args.only or "my_reports" in args.only:
            measure_cases(args, servers, workdir, report)

        # --- the embedded mode ---
        if "sqlite" in args.only:
            report["sqlite"] = measure_sqlite(args, servers, workdir)
        report["elapsed_s"] = time.monotonic() - started
        report["machine"]["loadavg_end"] = os.getloadavg()
        report["figures"] = figures(report)
        report["verdicts"] = verdicts(report["figures"], report.get("cases", {}).get("reports", 0))
        return report
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        servers.stop_all()
        if scratch_created:
            with contextlib.suppress(Exception):
                asyncio.run(sr._admin(base, f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)'))
        if args.drop_cache:
            with contextlib.suppress(Exception):
                asyncio.run(sr._admin(base, f'DROP DATABASE IF EXISTS "{cache_name(args.reports)}" WITH (FORCE)'))
        if args.keep_workdir:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def measure_scratch(
    args: argparse.Namespace, servers: Servers, workdir: Path, photo: Path, report: dict[str, Any]
) -> None:
    """pgbench, POST /v1/reports and POST /v1/uploads on a fresh scratch database, dropped at the end (the caller
    drops it if this fails half-way)."""
    from sqlalchemy import make_url

    base = make_url(sr.DEFAULT_DATABASE_URL)
    log_path = workdir / "server.log"
    sr.step(f"creating, migrating and seeding the scratch database {SCRATCH_DATABASE}")
    asyncio.run(
        sr._admin(
            base,
            f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)',
            f'CREATE DATABASE "{SCRATCH_DATABASE}"',
        )
    )
    scratch_url = sr._url(base, SCRATCH_DATABASE)
    _cli(["migrate"], scratch_url, workdir)
    _cli(["seed-demo"], scratch_url, workdir)
    api, api_url = servers.start(
        API_APP, args.workers, api_env(scratch_url, workdir / "objects", embedded_worker=False), log_path
    )
    logins = asyncio.run(sr.login_reporters(api_url, args.reporters))
    make_pg_uploads = postgres_uploads(base, SCRATCH_DATABASE)
    scratch_settle = settler(base, SCRATCH_DATABASE)

    # pgbench copies a row the API wrote: one submission first, by a reporter of its own.
    template_login = asyncio.run(sr.login_reporters(api_url, args.reporters + 1))[-1]
    upload_id = make_pg_uploads([template_login[1]], 1)[0][0]
    asyncio.run(submit_one(api_url, template_login[0], upload_id))
    sr.step("ceiling: pgbench single-row INSERT into reports")
    asyncio.run(sr.checkpoint(base, SCRATCH_DATABASE))
    pgbench_args = argparse.Namespace(
        pgbench_clients=args.pgbench_clients, pgbench_duration=round(args.duration), duration=args.duration
    )
    report["pgbench"] = sr.run_pgbench(pgbench_args, base, SCRATCH_DATABASE, template_login[1], workdir)
    asyncio.run(_drop_pgbench_rows(base, SCRATCH_DATABASE, template_login[1]))

    # --- endpoints on the scratch database ---
    report["submit"] = measure_endpoint(
        "POST /v1/reports",
        api_url,
        submit_config(args, workdir, logins, make_pg_uploads),
        args,
        workdir,
        connections=args.connections,
        settle=scratch_settle,
    )
    split = report["photo"]["comment_offset"]
    report["upload"] = measure_endpoint(
        "POST /v1/uploads",
        api_url,
        upload_config(workdir, logins, photo, split, args.threads),
        args,
        workdir,
        connections=args.upload_connections,
        settle=scratch_settle,
    )
    # Every 201 should be a photo of its own: at least one object directory per 201 (requests still running
    # when a window closes are finished by the server and stored too).
    report["upload"]["stored_uploads"] = sum(1 for _ in (workdir / "objects" / "uploads").iterdir())
    servers.stop(api)
    report["scratch_server_log"] = sr.scan_server_log(log_path)
    report["scratch_stored"] = asyncio.run(sr.stored_counts(base, SCRATCH_DATABASE))
    asyncio.run(sr._admin(base, f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)'))


def measure_cases(args: argparse.Namespace, servers: Servers, workdir: Path, report: dict[str, Any]) -> None:
    """The inspector's queue (first page and a cursor page) and GET /v1/me/reports on the generated cases."""
    from sqlalchemy import make_url

    base = make_url(sr.DEFAULT_DATABASE_URL)
    report["cases"] = ensure_cases(base, args.reports, args.regenerate)
    cases_db = report["cases"]["name"]
    cases_log = workdir / "cases-server.log"
    api, api_url = servers.start(
        API_APP,
        args.workers,
        api_env(sr._url(base, cases_db), workdir / "objects", embedded_worker=False),
        cases_log,
    )
    cases_settle = settler(base, cases_db)
    if "queue" in args.only:
        from app.demo.seed import DEMO_STAFF

        staff = next(s for s in DEMO_STAFF if s.username == INSPECTOR)
        inspector = asyncio.run(staff_login(api_url, staff.username, staff.password))
        first = asyncio.run(get_json(api_url, "/v1/staff/cases", inspector))
        if not first.get("next_cursor"):
            raise sr.BenchError(f"the inspector's queue has a single page: {first.get('counts')}")
        cursor_path = "/v1/staff/cases?" + urllib.parse.urlencode({"cursor": first["next_cursor"]})
        report["cases"].update(asyncio.run(case_facts(base, cases_db, str(staff.department_code))))
        report["cases"]["queue_first_page"] = {"items": len(first["items"]), "counts": first["counts"]}
        report["queue_first"] = measure_endpoint(
            "inspector queue, first page",
            api_url,
            get_config("/v1/staff/cases", inspector),
            args,
            workdir,
            connections=args.connections,
            settle=cases_settle,
        )
        report["queue_cursor"] = measure_endpoint(
            "inspector queue, cursor page",
            api_url,
            get_config(cursor_path, inspector),
            args,
            workdir,
            connections=args.connections,
            settle=cases_settle,
        )
    if "my_reports" in args.only:
        token, reporter_id = asyncio.run(sr.login_reporters(api_url, 1))[0]
        report["cases"]["my_reports"] = asyncio.run(give_reports(base, cases_db, reporter_id, MY_REPORTS))
        report["my_reports"] = measure_endpoint(
            "GET /v1/me/reports",
            api_url,
            get_config("/v1/me/reports", token),
            args,
            workdir,
            connections=args.connections,
            settle=cases_settle,
        )
    servers.stop(api)
    report["cases_server_log"] = sr.scan_server_log(cases_log)


def measure_sqlite(args: argparse.Namespace, servers: Servers, workdir: Path) -> dict[str, Any]:
    """The embedded mode as `make run` serves it: one process, SQLite, the embedded worker on, photos on disk."""
    database = workdir / "sqlite" / "hazard.db"
    database.parent.mkdir()
    url = f"sqlite+aiosqlite:///{database}"
    log_path = workdir / "sqlite-server.log"
    sr.step("embedded mode: migrating and seeding SQLite")
    _cli(["migrate"], url, workdir)
    _cli(["seed-demo"], url, workdir)
    env = api_env(url, workdir / "sqlite-objects", embedded_worker=True)
    server, base_url = servers.start(API_APP, 1, env, log_path)
    logins = asyncio.run(sr.login_reporters(base_url, args.reporters))
    # Every phase's uploads are written while the server is stopped: a long write of ours would hold SQLite's
    # single write lock and could put lock errors in the server's log that the server did not cause.
    servers.stop(server)
    config = submit_config(args, workdir, logins, sqlite_uploads(url))
    phases = {
        "warmup": config("warmup", SQLITE_RATE * 1.2, args.warmup) if args.warmup else None,
        "paced": config("paced", SQLITE_RATE * 1.2, args.sqlite_seconds),
        "saturation": config("saturation", args.max_sqlite_rps, args.duration),
    }
    server, base_url = servers.start(API_APP, 1, env, log_path)
    wrk = {
        "threads": args.threads,
        "workdir": workdir,
        "connections": args.sqlite_connections,
        "timeout_s": args.request_timeout,
    }
    if phases["warmup"]:
        sr.step(f"embedded mode: warm-up {args.warmup:g} s at {SQLITE_RATE:g}/s")
        run_wrk(base_url, phases["warmup"], seconds=args.warmup, pace_rps=SQLITE_RATE, **wrk)
    sr.step(f"embedded mode: paced at {SQLITE_RATE:g}/s for {args.sqlite_seconds:g} s")
    paced = run_wrk(base_url, phases["paced"], seconds=args.sqlite_seconds, pace_rps=SQLITE_RATE, **wrk)
    sr.step(f"embedded mode: saturation {args.duration:g} s")
    saturation = run_wrk(base_url, phases["saturation"], seconds=args.duration, **wrk)
    servers.stop(server)
    text = log_path.read_text(errors="replace")
    return {
        "paced": paced,
        "saturation": saturation,
        "lock_lines": sum(1 for line in text.splitlines() if LOCK_ERRORS.search(line)),
        "lock_samples": [line[:500] for line in text.splitlines() if LOCK_ERRORS.search(line)][:10],
        "server_log": sr.scan_server_log(log_path),
    }


def _cli(command: list[str], database_url: str, workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZARD_")}
    env.update(api_env(database_url, workdir / "objects", embedded_worker=False))
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise sr.BenchError(f"app.cli {' '.join(command)} failed:\n{(result.stdout + result.stderr)[-2000:]}")


async def _drop_pgbench_rows(base: Any, database: str, reporter_id: str) -> None:
    """pgbench's copies would otherwise sit at one point, every later submission's duplicate candidates."""
    connection = await sr._connect(base, database)
    try:
        # Nothing refers to pgbench's rows: the foreign-key triggers of the tables that refer to reports (one check
        # per table per row) would make this DELETE take minutes, so they are skipped (the superuser setting).
        await connection.execute("SET session_replication_role = replica")
        await connection.execute(
            "DELETE FROM reports WHERE reporter_id = $1 AND id NOT IN "
            "(SELECT report_id FROM uploads WHERE report_id IS NOT NULL)",
            uuid.UUID(reporter_id),
        )
        await connection.execute("VACUUM ANALYZE reports")
    finally:
        await connection.close()


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers and the ratios to the ceilings (NaN for the parts the run left out)."""

    def sat(name: str) -> float:
        return report[name]["saturation"]["ok_rps"] if name in report else math.nan

    def paced_p99(name: str) -> float | None:
        """The paced window's p99; an endpoint too slow to pace (under 1 request/s at saturation) gets its
        saturation p99, or infinity when no request completed in the window: either way it misses a ms target."""
        if name not in report:
            return None
        measured = report[name]
        result = measured.get("paced") or measured["saturation"]
        return result["latency_ms"]["p99"] if result["ok"] else math.inf

    hello = sat("hello")
    pgbench = report["pgbench"]["tps"] if "pgbench" in report else math.nan
    pillow = report["pillow"]["per_second"] if "pillow" in report else math.nan
    process_image = report["process_image"]["per_second"] if "process_image" in report else math.nan
    out = {
        "hello_rps": hello,
        "pgbench_tps": pgbench,
        "pillow_per_s": pillow,
        "process_image_per_s": process_image,
        "submit_vs_pgbench": ratio(sat("submit"), pgbench) if "submit" in report else None,
        "upload_vs_pillow": ratio(sat("upload"), pillow) if "upload" in report else None,
        "upload_vs_process_image": ratio(sat("upload"), process_image),
        "queue_first_vs_hello": ratio(sat("queue_first"), hello),
        "queue_cursor_vs_hello": ratio(sat("queue_cursor"), hello),
        "my_reports_vs_hello": ratio(sat("my_reports"), hello),
        "queue_first_paced_p99_ms": paced_p99("queue_first"),
        "queue_cursor_paced_p99_ms": paced_p99("queue_cursor"),
    }
    sqlite = report.get("sqlite")
    if sqlite is not None:
        out.update(
            {
                "sqlite_paced_ok_rps": sqlite["paced"]["ok_rps"],
                "sqlite_paced_p99_ms": sqlite["paced"]["latency_ms"]["p99"],
                "sqlite_paced_errors": sqlite["paced"]["non_2xx"] + sum(sqlite["paced"]["socket_errors"].values()),
                "sqlite_lock_lines": sqlite["lock_lines"],
                "sqlite_saturation_rps": sqlite["saturation"]["ok_rps"],
            }
        )
    return out


# --- output --------------------------------------------------------------------------------------------------------

ROWS = [
    ("hello", "ASGI hello (ceiling)", None, None),
    ("submit", "POST /v1/reports", "pgbench_tps", "x pgbench INSERT tps"),
    ("upload", "POST /v1/uploads (12 MP)", "pillow_per_s", "x Pillow re-encode/s"),
    ("queue_first", "GET /v1/staff/cases (inspector, page 1)", "hello_rps", "x ASGI hello"),
    ("queue_cursor", "GET /v1/staff/cases (inspector, cursor)", "hello_rps", "x ASGI hello"),
    ("my_reports", f"GET /v1/me/reports ({MY_REPORTS} own)", "hello_rps", "x ASGI hello"),
]


def table_lines(report: dict[str, Any]) -> list[str]:
    fig = report["figures"]
    lines = [
        f"{'endpoint':<42} {'load':<12} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}  ratio",
    ]

    def row(label: str, load: str, result: dict[str, Any] | None, note: str = "") -> None:
        if result is None:
            lines.append(f"{label:<42} {load:<12} {'-':>8}")
            return
        latency = result["latency_ms"]
        errors = result["non_2xx"] + sum(result["socket_errors"].values())
        lines.append(
            f"{label:<42} {load:<12} {result['ok_rps']:8.1f} {latency['p50']:8.1f} {latency['p95']:8.1f} "
            f"{latency['p99']:8.1f} {errors:7d}  {note}"
        )

    for key, label, ceiling, unit in ROWS:
        if key not in report:
            continue
        measured = report[key]
        note = f"{ratio(measured['saturation']['ok_rps'], fig[ceiling]):.3f} {unit}" if ceiling else ""
        if key == "upload":
            note += f"; {fig['upload_vs_process_image']:.3f} x process_image/s"
        row(label, "saturation", measured["saturation"], note)
        row("", f"paced {measured['paced_target_rps']:.0f}/s", measured["paced"])
    sqlite = report.get("sqlite")
    if sqlite is not None:
        row("embedded SQLite: POST /v1/reports", f"paced {SQLITE_RATE:.0f}/s", sqlite["paced"])
        row("", "saturation", sqlite["saturation"], f"lock lines in the log: {sqlite['lock_lines']}")
    lines.append("")
    lines.append(
        f"ceilings: ASGI hello {fig['hello_rps']:.0f}/s; pgbench INSERT {fig['pgbench_tps']:.0f} tps; "
        f"Pillow 12 MP decode+re-encode {fig['pillow_per_s']:.2f}/s; process_image {fig['process_image_per_s']:.2f}/s "
        f"(2 processes each)"
    )
    for name, verdict in report["verdicts"].items():
        value = verdict["value"]
        shown = "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
        note = f" ({verdict['note']})" if verdict.get("note") else ""
        lines.append(f"{verdict['verdict']:<5} {name}: {shown} — {verdict['target']}{note}")
    return lines


def print_report(report: dict[str, Any], path: Path) -> None:
    m = report["machine"]
    print()
    print(
        f"bench/load.py — {report['started_at']}, commit {m['git_commit'][:12]}{' (dirty)' if m['git_dirty'] else ''}, "
        f"{report['elapsed_s'] / 60:.1f} min"
    )
    print(
        f"machine: {m['nproc']} cores ({m['cpu_model']}), {m.get('ram_gib', '?')} GiB, load avg "
        f"{m['loadavg_start'][0]:.2f} → {m['loadavg_end'][0]:.2f}; {m['wrk']}; {m['postgresql'][:40]}"
    )
    if len(report["config"]["parts"]) < len(PARTS):
        print(f"parts measured (--only): {', '.join(report['config']['parts'])}")
    cases = report.get("cases")
    if cases is not None:
        print(f"cases stored: {cases.get('reports', 0):,} ({cases['name']}); my reports: {cases.get('my_reports')}")
    print()
    for line in table_lines(report):
        print(line)
    for name in ("submit", "sqlite"):
        for phase in ("saturation", "paced"):
            result = report.get(name, {}).get(phase)
            if result and result["wrapped"]:
                print(f"WARNING {name} {phase}: the prepared uploads ran out and were reused: raise --max-rps")
    print(f"json: {path.relative_to(ROOT)}")


def write_json(report: dict[str, Any]) -> Path:
    sr.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = sr.RESULTS_DIR / f"load-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def parts(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in chosen if part not in PARTS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"parts are {', '.join(PARTS)}; not {', '.join(unknown) or 'none'}")
    return chosen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 s warm-up, 5 s windows, 50,000 cases")
    parser.add_argument("--warmup", type=float, help="closed-loop warm-up before each saturation window, s (10)")
    parser.add_argument("--duration", type=float, help="each measured window, s (30)")
    parser.add_argument("--sqlite-seconds", type=float, help="the paced SQLite window, s (30)")
    parser.add_argument("--cpu-seconds", type=float, help="each Pillow/process_image ceiling, s (20)")
    parser.add_argument("--reports", type=int, help="generated cases (1,000,000; --quick 50,000)")
    parser.add_argument("--regenerate", action="store_true", help="generate the cases even if a cached one matches")
    parser.add_argument("--drop-cache", action="store_true", help="drop the generated database at the end")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c for the JSON endpoints (32)")
    parser.add_argument("--upload-connections", type=int, default=8, help="wrk -c for the photo upload (8)")
    parser.add_argument("--sqlite-connections", type=int, default=16, help="wrk -c for the embedded mode (16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (2)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers and ceiling processes (2)")
    parser.add_argument("--reporters", type=int, default=16, help="reporters posting submissions and photos (16)")
    parser.add_argument("--pgbench-clients", type=int, default=16, help="pgbench -c (16)")
    parser.add_argument("--max-rps", type=float, default=1000, help="uploads prepared per second of saturation")
    parser.add_argument(
        "--max-sqlite-rps", type=float, default=500, help="uploads prepared per second of the SQLite saturation"
    )
    parser.add_argument("--request-timeout", type=float, default=30, help="wrk --timeout, s (30)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the temporary directory (logs, wrk configs)")
    parser.add_argument(
        "--only",
        type=parts,
        default=PARTS,
        help=f"measure only these parts, comma-separated, of {','.join(PARTS)} (all); the others show as n/a",
    )
    args = parser.parse_args(argv)
    quick = {"warmup": 1, "duration": 5, "sqlite_seconds": 10, "cpu_seconds": 5, "reports": 50_000}
    full = {"warmup": 10, "duration": 30, "sqlite_seconds": 30, "cpu_seconds": 20, "reports": 1_000_000}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not 1 <= args.threads <= args.connections or args.upload_connections < args.threads:
        parser.error("wrk needs at least one connection per thread")
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 120 or not 1 <= args.sqlite_seconds <= 600:
        parser.error("--duration and --sqlite-seconds must be 1..600 s, --warmup 0..120 s")
    return args


def main() -> int:
    args = parse_args()

    def terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, terminate)
    signal.signal(signal.SIGTERM, terminate)
    try:
        report = run(args)
    except sr.BenchError as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("load: interrupted; cleaned up", file=sys.stderr)
        return 130
    path = write_json(report)
    print_report(report, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
