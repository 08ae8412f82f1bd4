from __future__ import annotations

import functools
import io
from pathlib import Path

import pytest
from PIL import Image

from tests.support.api import PHOTO_DIR, Api
from tests.support.images import png_bomb, small_jpeg

ALL_PHOTOS = sorted(p for p in PHOTO_DIR.rglob("*") if p.is_file() and p.suffix.lower() in {".jpg", ".heif"})
# Files that are damaged beyond decoding: each must get a clear 4xx with a code, never a 500.
BROKEN = {"corrupted.jpg"}

cached_bomb = functools.cache(png_bomb)


def _fetch(api: Api, url: str) -> bytes:
    response = api.client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 200
    return response.content


@pytest.mark.parametrize("path", ALL_PHOTOS, ids=lambda p: str(p.relative_to(PHOTO_DIR)))
def test_every_real_photo_is_accepted_or_cleanly_refused(api: Api, path: Path) -> None:
    headers = api.reporter("alice")
    response = api.upload(headers, path)
    if path.name in BROKEN:
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]["code"] == "image_corrupt"
        return
    assert response.status_code == 201, response.text
    view = response.json()
    for url in (view["display_url"], view["thumbnail_url"]):
        data = _fetch(api, url)
        assert b"Exif\x00\x00" not in data
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG"
        assert not image.getexif()
        assert "exif" not in image.info


def test_display_copies_are_upright_for_all_eight_orientations(api: Api) -> None:
    headers = api.reporter("alice")
    copies = []
    for n in range(1, 9):
        view = api.upload(headers, PHOTO_DIR / "jpg" / "orientation" / f"landscape_{n}.jpg").json()
        image = Image.open(io.BytesIO(_fetch(api, view["thumbnail_url"]))).convert("L").resize((32, 24))
        copies.append(image)
    reference = copies[0].tobytes()
    for n, image in enumerate(copies, start=1):
        assert image.size == (32, 24)
        pixels = image.tobytes()
        difference = sum(abs(a - b) for a, b in zip(pixels, reference, strict=True)) / len(pixels)
        assert difference < 12, f"landscape_{n} is not upright (mean difference {difference:.1f})"


def test_exif_capture_facts_are_kept_privately(api: Api) -> None:
    headers = api.reporter("alice")
    view = api.upload(headers, PHOTO_DIR / "jpg" / "gps" / "DSCN0010.jpg").json()
    assert "latitude" not in view and "exif" not in str(view).lower()


def test_a_text_file_named_jpg_is_refused(api: Api) -> None:
    response = api.upload(api.reporter("alice"), data=b"hello, this is not a photo\n" * 10, filename="photo.jpg")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "not_an_image"


def test_gif_is_an_unsupported_type(api: Api) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "GIF")
    response = api.upload(api.reporter("alice"), data=buffer.getvalue(), filename="x.jpg")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unsupported_image_type"


def test_a_decompression_bomb_is_refused(api: Api) -> None:
    response = api.upload(api.reporter("alice"), data=cached_bomb(), filename="bomb.png")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "image_too_large"


def test_a_body_over_the_limit_is_refused(api: Api) -> None:
    response = api.upload(api.reporter("alice"), data=b"\xff\xd8\xff" + b"\0" * (10 * 1024 * 1024 + 10))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"


def test_not_multipart_and_no_file(api: Api) -> None:
    headers = api.reporter("alice")
    response = api.client.post("/v1/uploads", headers=headers, json={"file": "x"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    response = api.client.post("/v1/uploads", headers=headers, data={"name": "x"}, files={"other": ("a", b"b")})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "file_missing"


def test_the_same_bytes_from_the_same_reporter_are_one_upload(api: Api) -> None:
    alice, bob = api.reporter("alice"), api.reporter("bob")
    data = small_jpeg(1)
    first = api.upload(alice, data=data).json()["id"]
    again = api.upload(alice, data=data).json()["id"]
    other = api.upload(bob, data=data).json()["id"]
    assert first == again != other


def test_an_idempotency_key_reused_for_other_bytes_is_refused(api: Api) -> None:
    headers = api.reporter("alice")
    first = api.upload(headers, data=small_jpeg(1), **{"Idempotency-Key": "photo-1"})
    again = api.upload(headers, data=small_jpeg(1), **{"Idempotency-Key": "photo-1"})
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = api.upload(headers, data=small_jpeg(2), **{"Idempotency-Key": "photo-1"})
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_uploading_needs_a_login(api: Api) -> None:
    response = api.client.post("/v1/uploads", files={"file": ("a.jpg", small_jpeg(), "image/jpeg")})
    assert response.status_code == 401
