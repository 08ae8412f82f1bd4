from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest

from app.core.config import DatabaseSettings, IntakeSettings, Settings, StorageSettings, WeChatSettings
from tests.support.databases import PostgresTemplate, SqliteTemplate, backend_name, make_template
from tests.support.servers import fake_wechat_app, serve_in_thread

warnings.filterwarnings("ignore", message=".*httpx2.*")

# On a shared 2-core machine, timings say more about the neighbours than about a test: no per-example deadline and
# no "generation is slow" failure. What each property checks is unchanged.
hypothesis.settings.register_profile("suite", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow])
hypothesis.settings.load_profile("suite")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
PHOTOS = SHARED / "data" / "photos"


async def _seed(database_url: str) -> None:
    from app.core.context import build_context, close_context
    from app.core.db import unit_of_work
    from app.demo.seed import seed_demo

    context = build_context(Settings(environment="test", database=DatabaseSettings(url=database_url)))
    try:
        async with unit_of_work(context.sessions) as session:
            await seed_demo(session, context)
    finally:
        await close_context(context)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any response a department's staff got in the suite holds a reporter's identity."""
    from tests.support.identity_scan import SCAN

    public_leaks = SCAN.public_leaks()
    if public_leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"IDENTITY OR PLACE LEAK to the public in {len(public_leaks)} responses:", red=True)
            for request, secret in public_leaks[:20]:
                reporter.write_line(f"  {request}: {secret}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    leaks = SCAN.leaks()
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"IDENTITY LEAK to department staff in {len(leaks)} responses:", red=True)
            for request, secret in leaks[:20]:
                reporter.write_line(f"  {request}: {secret}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif SCAN.bodies:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"identity scan: {len(SCAN.bodies)} department-staff responses checked against "
                f"{len(SCAN.secrets)} identity values, none found; {len(SCAN.public_bodies)} public responses "
                f"checked against those and {len(SCAN.coordinates)} exact coordinates, none found"
            )


def pytest_report_header() -> str:
    return f"database backend: {backend_name()}"


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteTemplate | PostgresTemplate]:
    template = make_template(tmp_path_factory.mktemp("db-template"))
    # Demo departments and staff go into the template once, not into every test's database.
    asyncio.run(_seed(template.url))
    yield template
    if isinstance(template, PostgresTemplate):
        template.drop()


@pytest.fixture
def database_url(database_template: SqliteTemplate | PostgresTemplate, tmp_path: Path) -> Iterator[str]:
    with database_template.database(tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def fake_wechat() -> Iterator[tuple[str, object]]:
    app = fake_wechat_app()
    with serve_in_thread(app) as url:
        yield url, app


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 endpoint over HTTP (moto's server) on a free loopback port."""
    from moto.server import ThreadedMotoServer

    # Port 0: the OS picks a free port, with no window for another process to grab it.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, fake_wechat: tuple[str, object]) -> Settings:
    return Settings(
        environment="test",
        public_base_url="http://testserver",
        log_level="WARNING",
        embedded_worker=False,
        database=DatabaseSettings(url=database_url),
        storage=StorageSettings(backend="local", local_root=tmp_path / "objects"),
        wechat=WeChatSettings(api_base=fake_wechat[0], app_id="wx-test", app_secret="test-secret"),
        intake=IntakeSettings(),
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("schemathesis", "tests/contract/test_schemathesis.py (make fuzz-api runs it long)")
    group.addoption("--schemathesis-examples", type=int, default=2, help="examples per operation and phase")
    group.addoption("--schemathesis-long", action="store_true", help="every caller over every operation, every phase")
    group.addoption(
        "--schemathesis-callers", type=lambda text: tuple(text.split(",")), default=None, help="comma-separated callers"
    )
