"""A thin client over the HTTP API for tests: log in, upload, submit, as the mini-program and staff do."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.demo.seed import DEMO_STAFF

PHOTO_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "photos"
DEFAULT_PHOTO = PHOTO_DIR / "jpg" / "gps" / "DSCN0010.jpg"
# A point in 英德市, Qingyuan (GCJ-02).
YINGDE = {"longitude": 113.405, "latitude": 24.186, "datum": "gcj02", "accuracy_m": 15.0, "address": "英德市英城街道"}


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def reporter(self, name: str = "alice") -> dict[str, str]:
        response = self.client.post("/v1/auth/wechat/login", json={"code": f"code-{name}"})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def staff(self, username: str) -> dict[str, str]:
        password = next(s.password for s in DEMO_STAFF if s.username == username)
        response = self.client.post("/v1/auth/staff/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

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
        return self.client.post("/v1/reports", headers={**headers, **extra}, json=self.report_body(ids, **overrides))


def random_uuid() -> str:
    return str(uuid.uuid4())
