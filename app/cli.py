"""Command line: ``python -m app.cli <command>``.

migrate          apply the Alembic migrations to the configured database
create-staff     create a staff account (the password is read from a prompt or the variable named by --password-env)
seed-demo        demo departments and staff accounts (development only)
cleanup          remove unattached uploads after 24 h, orphaned objects and expired idempotency records
openapi          write openapi.yaml
worker           the background work of production: outbox messages, deadline escalations, reward lapses, the
                 statistics rollups, cleanup (until SIGTERM)
refresh-statistics  rebuild the monthly statistics rollups now (the worker does it every 5 minutes)
import-jurisdictions FILE...   import GeoJSON boundaries (all files in one transaction: all or nothing)
import-atlas DIR               import a whole atlas folder laid out like ../shared/data/geo/china-counties
create-department              add a department
create-rule                    add a routing rule (category, jurisdiction or any → department)
create-partner                 add an Open311 partner platform and print its API key (shown once)
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from dataclasses import replace
from pathlib import Path

from app.core.config import Settings, load_settings
from app.core.context import build_context, close_context
from app.core.db import unit_of_work
from app.core.errors import DomainError
from app.core.migrate import upgrade
from app.geo.datum import Datum
from app.geo.geojson import load_geojson
from app.identity.roles import ROLE_NAMES, Role


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate")
    staff = commands.add_parser("create-staff")
    staff.add_argument("--username", required=True)
    staff.add_argument("--display-name", required=True)
    staff.add_argument("--role", required=True, choices=[r.value for r in Role])
    staff.add_argument("--department-code")
    staff.add_argument("--password-env", help="name of an environment variable holding the password")
    commands.add_parser("seed-demo")
    cleanup = commands.add_parser("cleanup")
    cleanup.add_argument(
        "--orphan-grace-minutes",
        type=int,
        default=60,
        help="remove objects with no row once older than this (default 60; 0 only with every API process stopped)",
    )
    commands.add_parser("worker")
    commands.add_parser("refresh-statistics")
    openapi = commands.add_parser("openapi")
    openapi.add_argument("--out", default="openapi.yaml")
    importer = commands.add_parser("import-jurisdictions")
    importer.add_argument("files", nargs="+", type=Path)
    importer.add_argument("--datum", choices=[d.value for d in Datum], default=Datum.GCJ02.value)
    importer.add_argument("--illustrative", action="store_true", help="示意数据，非官方边界")
    atlas = commands.add_parser("import-atlas")
    atlas.add_argument("folder", type=Path)
    atlas.add_argument("--datum", choices=[d.value for d in Datum], default=Datum.GCJ02.value)
    department = commands.add_parser("create-department")
    department.add_argument("--code", required=True)
    department.add_argument("--name", required=True)
    department.add_argument("--jurisdiction")
    rule = commands.add_parser("create-rule")
    rule.add_argument("--category", required=True)
    rule.add_argument("--jurisdiction", help="adcode; omit for any place")
    rule.add_argument("--department", required=True, help="department code")
    rule.add_argument("--priority", type=int, default=0)
    partner = commands.add_parser("create-partner")
    partner.add_argument("--name", required=True, help="合作平台名称")
    args = parser.parse_args(argv)

    settings = load_settings()
    try:
        return _run(args, settings)
    except DomainError as exc:
        print(f"错误 [{exc.code}]: {exc.detail_message}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "migrate":
        upgrade(settings.database.url)
        return 0
    if args.command == "openapi":
        from app.openapi_export import openapi_yaml

        Path(args.out).write_text(openapi_yaml(), encoding="utf-8")
        return 0
    if args.command == "create-staff":
        password = os.environ.get(args.password_env, "") if args.password_env else getpass.getpass("密码: ")
        if len(password) < 10:
            print("密码至少 10 个字符", file=sys.stderr)
            return 2
        asyncio.run(_create_staff(settings, args, password))
        return 0
    if args.command == "seed-demo":
        if settings.environment != "development":
            print("seed-demo 仅用于开发环境", file=sys.stderr)
            return 2
        asyncio.run(_seed_demo(settings))
        return 0
    if args.command == "cleanup":
        asyncio.run(_cleanup(settings, args.orphan_grace_minutes))
        return 0
    if args.command == "worker":
        asyncio.run(_worker(settings))
        return 0
    if args.command == "refresh-statistics":
        asyncio.run(_refresh_statistics(settings))
        return 0
    if args.command == "create-partner":
        from pydantic import ValidationError

        from app.open311.schemas import PartnerCreate

        try:
            args.name = PartnerCreate(name=args.name).name
        except ValidationError:
            print("合作平台名称须为 2 到 100 个字符，不含控制字符", file=sys.stderr)
            return 2
    asyncio.run(_reference_command(settings, args))
    return 0


async def _reference_command(settings: Settings, args: argparse.Namespace) -> None:
    from app.routing import service as routing

    actor = f"cli:{getpass.getuser()}"
    context = build_context(settings)
    try:
        async with unit_of_work(context.sessions) as session:
            if args.command == "import-jurisdictions":
                features = [f for path in args.files for f in load_geojson(path)]
                result = await routing.save_jurisdictions(
                    session, features, datum=Datum(args.datum), illustrative=args.illustrative, actor=actor
                )
                print(f"已导入 {result.imported} 个行政区域（参考数据版本 {result.reference_version}）")
            elif args.command == "import-atlas":
                from app.geo.index import load_county_layer

                layer = load_county_layer(args.folder)
                codes = {f.adcode for f in layer}
                # Provinces name the country (100000) as parent, which is no feature: they are the top.
                features = [f if f.parent_adcode in codes else replace(f, parent_adcode=None) for f in layer]
                result = await routing.save_jurisdictions(
                    session, features, datum=Datum(args.datum), illustrative=False, actor=actor
                )
                print(f"已导入 {result.imported} 个行政区域（参考数据版本 {result.reference_version}）")
            elif args.command == "create-department":
                created = await routing.create_department(session, args.code, args.name, args.jurisdiction, actor)
                print(f"已创建部门 {created.name}（{created.code}）")
            elif args.command == "create-partner":
                from app.open311 import service as open311

                created = await open311.create_partner(session, context, args.name, actor)
                print(f"已新增合作平台 {created.name}（{created.id}）")
                print(f"api_key（只显示这一次）：{created.api_key}")
            elif args.command == "create-rule":
                view = await routing.create_rule(
                    session,
                    category_code=args.category,
                    jurisdiction_adcode=args.jurisdiction,
                    department_code=args.department,
                    priority=args.priority,
                    actor=actor,
                )
                print(
                    f"已新增规则 {view.category_code} @ {view.jurisdiction_adcode or '任意地区'} → "
                    f"{view.department_name}（版本 {view.created_in_version}）"
                )
    finally:
        await close_context(context)


async def _create_staff(settings: Settings, args: argparse.Namespace, password: str) -> None:
    from app.identity.service import create_staff

    context = build_context(settings)
    try:
        async with unit_of_work(context.sessions) as session:
            staff = await create_staff(
                session,
                username=args.username,
                password=password,
                display_name=args.display_name,
                role=Role(args.role),
                department_code=args.department_code,
            )
        print(f"已创建 {staff.username}（{ROLE_NAMES[Role(staff.role)]}）")
    finally:
        await close_context(context)


async def _seed_demo(settings: Settings) -> None:
    from app.demo.seed import seed_demo

    context = build_context(settings)
    try:
        async with unit_of_work(context.sessions) as session:
            staff = await seed_demo(session, context)
    finally:
        await close_context(context)
    print("演示账号（POST /v1/auth/staff/login）：")
    for member in staff:
        print(f"  {member.username:<15} {member.password:<22} {ROLE_NAMES[member.role]}")
    print("举报人登录：POST /v1/auth/wechat/login，code 填 dev:<任意名字>，例如 dev:alice")


async def _worker(settings: Settings) -> None:
    """Several may run at once, beside API processes: each job is safe with concurrent runners."""
    import signal

    from app.core.logging import configure_logging
    from app.intake import maintenance
    from app.notifications.worker import run_worker
    from app.rewards import service as rewards_service
    from app.statistics import rollup
    from app.workflow import escalation

    configure_logging(settings.log_level)
    context = build_context(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    periodic = [
        asyncio.create_task(escalation.run_periodically(context)),
        asyncio.create_task(maintenance.run_periodically(context)),
        asyncio.create_task(rewards_service.run_periodically(context)),
        asyncio.create_task(rollup.run_periodically(context)),
    ]
    try:
        await run_worker(context, stop=stop)
    finally:
        for task in periodic:
            task.cancel()
        await asyncio.gather(*periodic, return_exceptions=True)
        await close_context(context)


async def _refresh_statistics(settings: Settings) -> None:
    from app.statistics import rollup

    context = build_context(settings)
    try:
        done = await rollup.refresh(context)
    finally:
        await close_context(context)
    print("statistics rollups rebuilt" if done else "another process is rebuilding the rollups")


async def _cleanup(settings: Settings, orphan_grace_minutes: int) -> None:
    from datetime import timedelta

    from app.intake.maintenance import cleanup

    context = build_context(settings)
    try:
        result = await cleanup(context, timedelta(minutes=max(0, orphan_grace_minutes)))
    finally:
        await close_context(context)
    print(
        f"removed {result.uploads_removed} unattached uploads, {result.orphan_objects_removed} orphan objects, "
        f"purged {result.idempotency_records_purged} idempotency records"
    )


if __name__ == "__main__":
    raise SystemExit(main())
