"""A thin client over the HTTP API for tests: log in, upload, submit, as the mini-program and staff do."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.demo.seed import DEMO_STAFF
from tests.support.identity_scan import DEPARTMENT_ROLES, PUBLIC_PREFIXES, SCAN

PHOTO_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "photos"
DEFAULT_PHOTO = PHOTO_DIR / "jpg" / "gps" / "DSCN0010.jpg"
# A point in 英德市, Qingyuan (GCJ-02).
YINGDE = {"longitude": 113.405, "latitude": 24.186, "datum": "gcj02", "accuracy_m": 15.0, "address": "英德市英城街道"}


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self._department_tokens: set[str] = set()
        self._request = client.request
        client.request = self._recording_request  # type: ignore[method-assign]

    def _recording_request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        response = self._request(method, url, *args, **kwargs)
        authorization = (kwargs.get("headers") or {}).get("Authorization", "")
        if authorization in self._department_tokens:
            SCAN.bodies.append((f"{method} {url}", response.text))
        if method.upper() == "GET" and str(url).startswith(PUBLIC_PREFIXES):
            SCAN.public_bodies.append((f"{method} {url}", response.text))
        return response

    def reporter(self, name: str = "alice") -> dict[str, str]:
        response = self.client.post("/v1/auth/wechat/login", json={"code": f"code-{name}"})
        assert response.status_code == 200, response.text
        SCAN.secrets.update({str(response.json()["reporter_id"]), f"openid-{name}"})
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def staff(self, username: str) -> dict[str, str]:
        password = next(s.password for s in DEMO_STAFF if s.username == username)
        response = self.client.post("/v1/auth/staff/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        authorization = f"Bearer {response.json()['access_token']}"
        if response.json()["staff"]["role"] in DEPARTMENT_ROLES:
            self._department_tokens.add(authorization)
        return {"Authorization": authorization}

    def upload(
        self,
        headers: dict[str, str],
        path: Path = DEFAULT_PHOTO,
        data: bytes | None = None,
        filename: str | None = None,
        **extra_headers: str,
    ) -> Any:
        content = data if data is not None else path.read_bytes()
        return self.client.post(
            "/v1/uploads",
            headers={**headers, **extra_headers},
            files={"file": (filename or path.name, content, "image/jpeg")},
            data={"purpose": "report"},
        )

    def upload_id(self, headers: dict[str, str], path: Path = DEFAULT_PHOTO, data: bytes | None = None) -> str:
        response = self.upload(headers, path, data)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    @staticmethod
    def report_body(upload_ids: list[str], **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "category": "gas",
            "hazard_kind": "accident_hazard",
            "description": "饭店后厨液化气瓶放在灶台旁边，软管老化",
            "location": dict(YINGDE),
            "observed_at": "2026-11-20T09:30:00+08:00",
            "upload_ids": upload_ids,
        }
        body.update(overrides)
        return body

    def submit(
        self,
        headers: dict[str, str],
        upload_ids: list[str] | None = None,
        *,
        idempotency_key: str | None = None,
        **overrides: Any,
    ) -> Any:
        ids = upload_ids if upload_ids is not None else [self.upload_id(headers)]
        extra = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self.client.post(
            "/v1/reports", headers={**headers, **extra}, json=self.report_body(ids, **overrides)
        )
        if response.status_code == 201:
            SCAN.secrets.add(response.json()["query_code"])
        caller = overrides.get("caller") or {}
        SCAN.secrets.update(value for value in caller.values() if value and len(value) >= 3)
        location = overrides.get("location") or {}
        SCAN.coordinates.update(exact_coordinates(location.get("longitude"), location.get("latitude")))
        return response

    def command(self, headers: dict[str, str], case_id: str, command: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(f"/v1/staff/cases/{case_id}/{command}", headers=headers, json=body or {})

    def accept_and_assign(self, case_id: str, department_code: str | None = None) -> None:
        dispatcher = self.staff("dispatcher")
        accepted = self.command(dispatcher, case_id, "accept")
        assert accepted.status_code == 200, accepted.text
        body = {"department_code": department_code} if department_code else {}
        assigned = self.command(dispatcher, case_id, "assign", body)
        assert assigned.status_code == 200, assigned.text


def exact_coordinates(*values: float | None) -> set[str]:
    """The texts an exact coordinate would appear as (as given, and at 4 and 5 decimals), for those precise enough
    (4 decimals or more) not to be confused with a coarse public point."""
    texts = set()
    for value in values:
        if value is not None and len(repr(float(value)).partition(".")[2]) >= 4:
            texts.update({repr(float(value)), f"{value:.4f}", f"{value:.5f}"})
    return texts


def random_uuid() -> str:
    return str(uuid.uuid4())
