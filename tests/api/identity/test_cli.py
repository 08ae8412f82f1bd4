from __future__ import annotations

import os
import subprocess
import sys

from fastapi.testclient import TestClient

from app.core.config import Settings


def _cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "HAZARD_DATABASE__URL": settings.database.url, "HAZARD_LOG_LEVEL": "WARNING", **env}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_create_staff_from_the_command_line(settings: Settings, client: TestClient) -> None:
    created = _cli(
        settings,
        "create-staff",
        "--username",
        "zhang.san",
        "--display-name",
        "张三",
        "--role",
        "inspector",
        "--department-code",
        "441881-fire",
        "--password-env",
        "STAFF_PASSWORD",
        STAFF_PASSWORD="a-long-enough-password",
    )
    assert created.returncode == 0, created.stderr
    login = client.post("/v1/auth/staff/login", json={"username": "zhang.san", "password": "a-long-enough-password"})
    assert login.status_code == 200
    assert login.json()["staff"]["role"] == "inspector"

    again = _cli(
        settings,
        "create-staff",
        "--username",
        "zhang.san",
        "--display-name",
        "张三",
        "--role",
        "admin",
        "--password-env",
        "STAFF_PASSWORD",
        STAFF_PASSWORD="a-long-enough-password",
    )
    assert again.returncode == 2 and "username_taken" in again.stderr
    no_department = _cli(
        settings,
        "create-staff",
        "--username",
        "li.si",
        "--display-name",
        "李四",
        "--role",
        "inspector",
        "--password-env",
        "STAFF_PASSWORD",
        STAFF_PASSWORD="a-long-enough-password",
    )
    assert no_department.returncode == 2 and "department_required" in no_department.stderr


def test_seed_demo_is_refused_outside_development(settings: Settings) -> None:
    refused = _cli(settings, "seed-demo", HAZARD_ENVIRONMENT="test")
    assert refused.returncode == 2
