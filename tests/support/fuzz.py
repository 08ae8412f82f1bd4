"""Schemathesis against the committed openapi.yaml, through a live server of the app (issue 7, hostile input).

The suite runs it briefly (tests/contract/test_schemathesis.py); `make fuzz-api` runs it long on both databases.
Each run is the schemathesis CLI, as anyone would run it, with the project's `schemathesis.toml` (every check, how
the checks are configured and why) against one caller's token; its JSON report gives the figures.

The server is the app on the test's own database, with the fake WeChat of the suite behind the reporter login, so
that a login with a code WeChat rejects answers 401 as it would in production (a 503 with no WeChat reachable is
real and documented, but it is an outage, not an answer to hostile input). Before the run, a reporter's case is
taken to a verified one with a proposed reward, so lists, timelines and rewards have something to answer with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.core.config import Settings
from app.main import create_app
from tests.api.rewards.flow import new_case, verify
from tests.support.api import Api
from tests.support.servers import serve_in_thread

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAPI = REPO_ROOT / "openapi.yaml"
CONFIG = REPO_ROOT / "schemathesis.toml"

# The reporter owns the world's case and reward; staff log in with the demo passwords.
REPORTER = "alice"
ANONYMOUS = "anonymous"
STAFF = ("hotline", "dispatcher", "inspector", "fire-inspector", "head", "auditor", "payer", "admin")
ALL_PHASES = "examples,coverage,fuzzing,stateful"

# The suite's brief run: the anonymous caller over every operation, and each other caller over the operations it
# works with (its own and the public ones), without the coverage phase, which alone takes 100 s per caller over the
# whole schema. The long run (`make fuzz-api`) takes every caller over every operation, every phase.
BRIEF_PHASES = "examples,fuzzing,stateful"
BRIEF_SCOPES: dict[str, str | None] = {
    ANONYMOUS: None,
    REPORTER: "^/v1/(me|reports|uploads|rewards/claim-by-code|auth/wechat|categories|subscriptions|public)",
    "dispatcher": "^/v1/(staff/(cases|triage|supervision|statistics)|admin/routing/preview)",
    "auditor": "^/v1/staff/rewards",
    "admin": "^/v1/admin/",
}
LONG_CALLERS = (ANONYMOUS, REPORTER, *STAFF)


@dataclass
class FuzzTarget:
    base_url: str
    headers: dict[str, dict[str, str]]


@dataclass
class FuzzRun:
    """The figures of one schemathesis run, from its JSON report."""

    caller: str
    operations: int
    selected: int
    tested: int
    cases: int
    failures: list[dict[str, Any]]
    errors: list[Any]
    exit_code: int
    seconds: float
    output: str = field(repr=False)

    @property
    def failure_count(self) -> int:
        return sum(int(f["count"]) for f in self.failures)

    def line(self) -> str:
        return (
            f"{self.caller:>14}: {self.tested}/{self.selected} operations tested (of {self.operations}), "
            f"{self.cases} cases, "
            f"{self.failure_count} failures, {len(self.errors)} errors, {self.seconds:.1f} s"
        )


@contextmanager
def fuzz_target(settings: Settings) -> Iterator[FuzzTarget]:
    """The app served on a free port, the world built through it, and a token for every caller."""
    with serve_in_thread(create_app(settings)) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        api = Api(client)  # type: ignore[arg-type]  # the helper's calls are httpx's
        reporter, receipt = new_case(api, REPORTER)
        verify(api, receipt["id"])
        headers = {ANONYMOUS: {}, REPORTER: reporter} | {name: api.staff(name) for name in STAFF}
        yield FuzzTarget(base_url, headers)


def run_schemathesis(
    target: FuzzTarget,
    caller: str,
    *,
    max_examples: int,
    report_dir: Path,
    phases: str = ALL_PHASES,
    paths: str | None = None,
) -> FuzzRun:
    """One `st run` as ``caller`` over every operation (or those whose path matches ``paths``); deterministic, so a
    failure reproduces with the same command."""
    report = report_dir / f"{caller}.json"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        str(OPENAPI),
        "--url",
        target.base_url,
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--generation-deterministic",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
        "--phases",
        phases,
    ]
    if paths:
        command += ["--include-path-regex", paths]
    for name, value in target.headers[caller].items():
        command += ["--header", f"{name}: {value}"]
    started = time.monotonic()
    # The checks module is found from the repository root; nothing else of the test's environment is needed.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    (report_dir / f"{caller}.txt").write_text(completed.stdout + completed.stderr, encoding="utf-8")
    if not report.exists():
        raise RuntimeError(f"schemathesis wrote no report:\n{completed.stdout[-5000:]}\n{completed.stderr[-5000:]}")
    data = json.loads(report.read_text(encoding="utf-8"))
    return FuzzRun(
        caller=caller,
        operations=int(data["operations"]["total"]),
        selected=int(data["operations"]["selected"]),
        tested=int(data["operations"]["tested"]),
        cases=int(data["test_cases"]["generated"]),
        failures=list(data["failures"]),
        errors=list(data["errors"]),
        exit_code=completed.returncode,
        seconds=seconds,
        output=completed.stdout + completed.stderr,
    )
