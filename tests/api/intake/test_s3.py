"""The same reporter round trip with the production object store: S3 (moto's server over HTTP)."""

from __future__ import annotations

import io
import uuid

import httpx
from fastapi.testclient import TestClient
from PIL import Image

from app.core.config import Settings, StorageSettings
from app.main import create_app
from tests.support.api import Api


def test_upload_submit_and_view_on_s3(settings: Settings, moto_endpoint: str) -> None:
    s3 = StorageSettings(
        backend="s3",
        s3_endpoint=moto_endpoint,
        s3_access_key="testing",
        s3_secret_key="testing",
        s3_bucket=f"evidence-{uuid.uuid4().hex[:12]}",
    )
    with TestClient(create_app(settings.model_copy(update={"storage": s3}))) as client:
        api = Api(client)
        assert client.get("/readyz").status_code == 200  # the bucket was made at start-up
        headers = api.reporter("alice")
        upload_id = api.upload_id(headers)
        receipt = api.submit(headers, [upload_id]).json()
        detail = client.get(f"/v1/me/reports/{receipt['id']}", headers=headers).json()
        url = detail["photos"][0]["display_url"]
        assert url.startswith(f"http://{moto_endpoint}/") and "X-Amz-Signature" in url
        photo = httpx.get(url)
        assert photo.status_code == 200
        image = Image.open(io.BytesIO(photo.content))
        assert image.format == "JPEG" and not image.getexif()
