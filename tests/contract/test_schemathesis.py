"""Hostile input: schemathesis over the committed openapi.yaml, with every check, against the app on the suite's
database (SQLite, or PostgreSQL with TEST_DATABASE_URL), as an anonymous caller, the reporter and staff.

Brief in the suite (tests/support/fuzz.py says what it leaves to the long run); `make fuzz-api` passes
--schemathesis-long: every caller over every operation, every phase, more examples, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import Settings
from tests.support.fuzz import ALL_PHASES, BRIEF_PHASES, BRIEF_SCOPES, LONG_CALLERS, fuzz_target, run_schemathesis


@pytest.mark.slow
def test_schemathesis_finds_no_failure(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    examples = request.config.getoption("schemathesis_examples")
    long = request.config.getoption("schemathesis_long")
    callers = request.config.getoption("schemathesis_callers") or (LONG_CALLERS if long else tuple(BRIEF_SCOPES))
    with fuzz_target(settings) as target:
        runs = [
            run_schemathesis(
                target,
                caller,
                max_examples=examples,
                report_dir=tmp_path,
                phases=ALL_PHASES if long else BRIEF_PHASES,
                paths=None if long else BRIEF_SCOPES.get(caller),
            )
            for caller in callers
        ]
    summary = "\n".join(run.line() for run in runs)
    totals = f"{sum(r.cases for r in runs)} cases, {sum(r.failure_count for r in runs)} failures"
    print(f"\nschemathesis, {examples} examples per operation ({'long' if long else 'brief'}), {totals}:\n{summary}")
    failed = [run for run in runs if run.failures or run.errors or run.exit_code != 0]
    assert not failed, f"{summary}\nreports in {tmp_path}\n\n" + "\n\n".join(run.output[-20_000:] for run in failed)
    # A run that tested nothing passes nothing: every selected operation was tried, with cases to spare, and one
    # caller at least went over the whole schema.
    assert all(run.tested == run.selected > 0 and run.cases > run.selected for run in runs), summary
    assert any(run.selected == run.operations > 90 for run in runs), summary
