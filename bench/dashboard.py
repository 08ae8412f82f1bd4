"""Dashboard queries over 1,000,000 generated reports on PostgreSQL: every query should answer within 500 ms.

    .venv/bin/python bench/dashboard.py [--reports 1000000] [--keep] [--reuse]

Makes a scratch database (``hz_bench_dashboard``) on the local server, migrates it, seeds the demo reference data
(英德市, its townships and departments), then generates in SQL: reports spread over the past 365 days across the
categories, departments and townships, in every state in realistic proportions; their deadlines (acceptance for
all, verification for the accepted, rectification for those ordered); verifications; passed rectifications;
ratings; rewards and ledger rows for 2% of them. It then calls every statistics endpoint through the ASGI app (as
a dispatcher, the widest scope) for the whole year and for the last 30 days, 5 times each, and prints the median
and the worst. ``--keep`` leaves the database for EXPLAIN; ``--reuse`` skips generation if it exists.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.config import DatabaseSettings, Settings
from app.core.context import build_context, close_context
from app.core.db import unit_of_work
from app.core.migrate import upgrade
from app.demo.seed import DEMO_STAFF, seed_demo
from app.main import create_app

SERVER = "postgresql://postgres@127.0.0.1:5432"
NAME = "hz_bench_dashboard"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{NAME}"
TARGET_MS = 500.0

GENERATE = """
WITH params AS (
  SELECT array_agg(code ORDER BY code) AS categories FROM categories
), departments_ AS (
  SELECT array_agg(id ORDER BY code) AS ids FROM departments
), places AS (
  SELECT array_agg(adcode ORDER BY adcode) AS codes FROM jurisdictions WHERE adcode LIKE '441881%'
)
INSERT INTO reports (id, number, channel, state, category_code, hazard_kind, description, longitude, latitude, datum,
  region_code, observed_at, reporter_is_employee, identity_hidden, query_code_hash, flags, created_at,
  jurisdiction_adcode, department_id, event_count, appeals_used, rectification_round, extension, finished_at,
  satisfaction_score, received_on, acceptance_hours, verification_hours, verified_on_time, verification_outcome,
  rectification_hours, rectified_at)
SELECT gen_random_uuid(), 'B-' || i, 'miniprogram', s.state,
  p.categories[(1 + (i::bigint * 7919) % array_length(p.categories, 1))::int], 'accident_hazard', '生成的举报',
  113.4, 24.18,
  'gcj02', '441881', t.at, false, false, 'x', '[]', t.at,
  pl.codes[(1 + (i::bigint * 104729) % array_length(pl.codes, 1))::int],
  CASE WHEN s.state IN ('submitted', 'rejected', 'merged') THEN NULL
       ELSE d.ids[(1 + (i::bigint * 31) % array_length(d.ids, 1))::int] END,
  3, 0, CASE WHEN s.state IN ('rectifying', 'rectified', 'closed') THEN 1 ELSE 0 END, 'none',
  CASE WHEN s.state IN ('closed', 'rejected', 'merged') THEN t.at + make_interval(hours => 2 + (i % 900)) END,
  CASE WHEN s.state = 'closed' AND i % 3 = 0 THEN 1 + (i % 5) END, (t.at AT TIME ZONE 'Asia/Shanghai')::date,
  -- the same durations as the deadlines generated below (what the commands keep on the report as steps are met)
  CASE WHEN s.state <> 'submitted' THEN 1 + h.h % 100 END,
  CASE WHEN s.verified THEN (h.h % 70) * 24 END,
  CASE WHEN s.verified THEN 1 + h.h % 70 <= 61 END,
  CASE WHEN s.state = 'verified_false' THEN 'false' WHEN s.verified THEN 'true' END,
  CASE WHEN s.state IN ('rectified', 'closed') AND h.h % 2 = 0 THEN 480 END,
  CASE WHEN s.state = 'closed' AND h.h % 2 = 0 THEN t.at + interval '40 days' END
FROM generate_series(1, $1) AS i
CROSS JOIN params p CROSS JOIN departments_ d CROSS JOIN places pl
CROSS JOIN LATERAL (SELECT now() - make_interval(secs => (i::bigint * 2654435761 % 31536000)::int) AS at) t
CROSS JOIN LATERAL (SELECT abs(hashtext('B-' || i)) AS h) h
CROSS JOIN LATERAL (SELECT CASE
    -- Cases received more than 60 days ago are finished; the open states are the recent ones, as in a service
    -- that keeps its deadlines (60 days to verify).
    WHEN t.at < now() - interval '60 days' THEN
      CASE WHEN i % 100 < 8 THEN 'rejected' WHEN i % 100 < 14 THEN 'merged' ELSE 'closed' END
    WHEN i % 100 < 3 THEN 'submitted' WHEN i % 100 < 8 THEN 'rejected' WHEN i % 100 < 12 THEN 'merged'
    WHEN i % 100 < 15 THEN 'accepted' WHEN i % 100 < 20 THEN 'assigned' WHEN i % 100 < 26 THEN 'verifying'
    WHEN i % 100 < 30 THEN 'verified_true' WHEN i % 100 < 36 THEN 'rectifying' WHEN i % 100 < 40 THEN 'rectified'
    WHEN i % 100 < 44 THEN 'verified_false' ELSE 'closed' END AS state) s0
CROSS JOIN LATERAL (SELECT s0.state,
    s0.state IN ('verified_true', 'verified_false', 'rectifying', 'rectified', 'closed') AS verified) s
"""

DEADLINES = """
INSERT INTO case_deadlines (id, report_id, step, started_at, days, count, due_at, provisional, extended_days,
  met_at)
SELECT gen_random_uuid(), r.id, 'acceptance', r.created_at, 3, 'working', r.created_at + interval '5 days', false, 0,
  CASE WHEN r.state <> 'submitted' THEN r.created_at + make_interval(hours => 1 + abs(hashtext(r.number)) % 100) END
FROM reports r;
INSERT INTO case_deadlines (id, report_id, step, started_at, days, count, due_at, provisional, extended_days,
  met_at)
SELECT gen_random_uuid(), r.id, 'verification', r.created_at + interval '1 day', 60, 'calendar',
  r.created_at + interval '61 days', false, 0,
  CASE WHEN r.state IN ('verified_true', 'verified_false', 'rectifying', 'rectified', 'closed')
       THEN r.created_at + make_interval(days => 1 + abs(hashtext(r.number)) % 70) END
FROM reports r WHERE r.state NOT IN ('submitted', 'rejected', 'merged');
INSERT INTO case_deadlines (id, report_id, step, started_at, days, count, due_at, provisional, extended_days,
  met_at)
SELECT gen_random_uuid(), r.id, 'rectification', r.created_at + interval '20 days', 30, 'calendar',
  r.created_at + interval '50 days', false, 0,
  CASE WHEN r.state IN ('rectified', 'closed') THEN r.created_at + interval '40 days' END
FROM reports r WHERE r.state IN ('rectifying', 'rectified', 'closed') AND abs(hashtext(r.number)) % 2 = 0;
"""

VERIFICATIONS = """
INSERT INTO case_verifications (report_id, outcome, hazard_level, standard_items, findings, verified_by, verified_at)
SELECT r.id, CASE WHEN r.state = 'verified_false' THEN 'false' ELSE 'true' END, 'general', '[]', '生成',
  (SELECT id FROM staff_users WHERE username = 'inspector'), r.created_at + interval '10 days'
FROM reports r WHERE r.state IN ('verified_true', 'verified_false', 'rectifying', 'rectified', 'closed');
INSERT INTO rectifications (id, report_id, round, measures, due_at, due_provisional, ordered_by, ordered_at, passed,
  after_photo_ids)
SELECT gen_random_uuid(), r.id, 1, '生成', r.created_at + interval '50 days', false,
  (SELECT id FROM staff_users WHERE username = 'inspector'), r.created_at + interval '20 days', true, '[]'
FROM reports r WHERE r.state = 'closed' AND abs(hashtext(r.number)) % 2 = 0;
"""

REWARDS = """
INSERT INTO rewards (id, number, case_id, report_id, stage, state, department_id, category_code, received_on,
  jurisdiction_adcode, case_kind,
  reporter_key, anonymous, policy_id, policy_code, policy_version, eligible, amount_fen, explanation, inputs,
  approved_fen, approved_at, paid_at, appeals_used, ledger_count, payment_attempts, updated_at, created_at)
SELECT gen_random_uuid(), r.number || '-V', r.id, r.id, 'verification',
  CASE WHEN abs(hashtext(r.number)) % 3 = 0 THEN 'approved' ELSE 'paid' END, r.department_id, r.category_code,
  r.received_on, r.jurisdiction_adcode, 'major_hazard', 'report:' || r.id, false,
  (SELECT id FROM reward_policies WHERE code = 'national-2018'),
  'national-2018', 1, true, 300000, '[]', '{}', 300000, r.created_at + interval '30 days',
  CASE WHEN abs(hashtext(r.number)) % 3 = 0 THEN NULL ELSE r.created_at + interval '40 days' END, 0,
  CASE WHEN abs(hashtext(r.number)) % 3 = 0 THEN 1 ELSE 2 END, 0, now(), r.created_at + interval '10 days'
FROM reports r WHERE r.state = 'closed' AND abs(hashtext(r.number)) % 28 = 0;
INSERT INTO reward_ledger (id, reward_id, sequence, kind, account, amount_fen, case_id, policy_id, actor_id,
  created_at)
SELECT gen_random_uuid(), w.id, 1, 'approval', 'approved', w.approved_fen, w.case_id, w.policy_id, 'bench',
  w.approved_at FROM rewards w;
INSERT INTO reward_ledger (id, reward_id, sequence, kind, account, amount_fen, case_id, policy_id, actor_id,
  created_at)
SELECT gen_random_uuid(), w.id, 2, 'payment', 'paid', w.approved_fen, w.case_id, w.policy_id, 'bench', w.paid_at
FROM rewards w WHERE w.state = 'paid';
"""

LONGEST = {"day": 92, "week": 184}  # the longest period each granularity is offered for (app/statistics/router.py)
QUERIES = [
    ("counts by state", "/v1/staff/statistics/counts", {"group_by": "state"}),
    (
        "counts by month×category×department",
        "/v1/staff/statistics/counts",
        {"group_by": ["period", "category", "department"], "granularity": "month"},
    ),
    # Daily series are offered for up to 92 days and weekly ones for up to 184: the long pass uses those windows.
    (
        "counts by day×township×state",
        "/v1/staff/statistics/counts",
        {"group_by": ["period", "jurisdiction", "state"], "granularity": "day"},
    ),
    ("counts by week", "/v1/staff/statistics/counts", {"group_by": "period", "granularity": "week"}),
    ("rates", "/v1/staff/statistics/rates", {}),
    ("durations (p50, p90)", "/v1/staff/statistics/durations", {}),
    ("overdue", "/v1/staff/statistics/overdue", {}),
    ("rewards by department", "/v1/staff/statistics/rewards", {}),
    ("campaign table by department", "/v1/staff/statistics/campaign", {"by": "department"}),
    ("campaign table by township", "/v1/staff/statistics/campaign", {"by": "township"}),
]


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _exists() -> bool:
    connection = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        return bool(await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", NAME))
    finally:
        await connection.close()


async def generate(count: int, name: str = NAME) -> None:
    """(Re)creates the database ``name`` with ``count`` generated reports; bench/load.py reuses it."""
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{name}"')
    await asyncio.to_thread(upgrade, url)
    context = build_context(Settings(environment="test", database=DatabaseSettings(url=url)))
    try:
        async with unit_of_work(context.sessions) as session:
            await seed_demo(session, context)
    finally:
        await close_context(context)
    connection = await asyncpg.connect(f"{SERVER}/{name}")
    try:
        for label, sql, args in (
            ("reports", GENERATE, (count,)),
            ("deadlines", DEADLINES, ()),
            ("verifications and rectifications", VERIFICATIONS, ()),
            ("rewards and ledger", REWARDS, ()),
        ):
            started = time.perf_counter()
            if args:
                await connection.execute(sql, *args)
            else:
                await connection.execute(sql)
            print(f"  generated {label} in {time.perf_counter() - started:.1f} s", flush=True)
        await connection.execute("VACUUM FULL")  # the generation's UPDATEs leave dead rows a live table would not have
        await connection.execute("VACUUM ANALYZE")
        sizes = await connection.fetch(
            "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE n_live_tup > 1000 ORDER BY n_live_tup DESC"
        )
        print("  rows: " + ", ".join(f"{r['relname']} {r['n_live_tup']:,}" for r in sizes))
    finally:
        await connection.close()
    await refresh_rollups(url)


async def refresh_rollups(url: str = URL) -> None:
    from app.statistics import rollup

    context = build_context(Settings(environment="test", database=DatabaseSettings(url=url)))
    try:
        started = time.perf_counter()
        await rollup.refresh(context)
        print(f"  rebuilt the monthly rollups in {time.perf_counter() - started:.1f} s (every 5 minutes in the worker)")
    finally:
        await close_context(context)


async def measure(runs: int) -> list[tuple[str, str, float, float]]:
    settings = Settings(
        environment="test", log_level="WARNING", embedded_worker=False, database=DatabaseSettings(url=URL, pool_size=4)
    )
    app = create_app(settings)
    results = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            password = next(s.password for s in DEMO_STAFF if s.username == "dispatcher")
            login = await client.post("/v1/auth/staff/login", json={"username": "dispatcher", "password": password})
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            for window, days in (("long", 365), ("30 days", 30)):
                for label, path, params in QUERIES:
                    longest = LONGEST.get(str(params.get("granularity")), days)
                    extra = {"date_from": _days_ago(min(days, longest) - 1)}
                    timings = []
                    for _ in range(runs + 1):  # the first run warms the caches and is not counted
                        started = time.perf_counter()
                        response = await client.get(path, headers=headers, params={**params, **extra})
                        timings.append((time.perf_counter() - started) * 1000)
                        assert response.status_code == 200, response.text
                    timings = timings[1:]
                    shown = f"{label} ({min(days, longest)} days)"
                    results.append((window, shown, statistics.median(timings), max(timings)))
                    print(
                        f"  {shown:<52} median {results[-1][2]:7.1f} ms   worst {results[-1][3]:7.1f} ms",
                        flush=True,
                    )
    return results


def _days_ago(days: int) -> str:
    from datetime import timedelta

    from app.core.db import utcnow
    from app.deadlines.calendar import china_day

    return (china_day(utcnow()) - timedelta(days=days)).isoformat()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the database for EXPLAIN")
    parser.add_argument("--reuse", action="store_true", help="reuse the generated database if it exists")
    args = parser.parse_args()
    if not (args.reuse and await _exists()):
        print(f"generating {args.reports:,} reports in {NAME} ...", flush=True)
        await generate(args.reports)
    print("measuring (through the ASGI app, as a dispatcher):", flush=True)
    results = await measure(args.runs)
    slow = [(w, label, median) for w, label, median, _ in results if median > TARGET_MS]
    print(
        f"slowest median: {max(r[2] for r in results):.1f} ms (target {TARGET_MS:.0f} ms); "
        f"{'all within target' if not slow else f'{len(slow)} over target'}"
    )
    if not args.keep:
        await _admin(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    return 0 if not slow else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
