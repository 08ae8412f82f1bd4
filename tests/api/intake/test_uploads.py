from __future__ import annotations

import functools
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.db import unit_of_work
from app.intake.models import Upload
from tests.support.api import DEFAULT_PHOTO, PHOTO_DIR, Api
from tests.support.images import (
    deflated_zeros,
    jpeg_declaring,
    jpeg_with_payload,
    png_bomb,
    png_header_only,
    png_with_chunk,
    png_with_long_data,
    progressive_jpeg,
    small_jpeg,
    webp_declaring,
)

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


# --- hostile input (issue 7): every refusal is a 4xx with a stable code and a Chinese message, never a 500, and
# leaves nothing behind: no Upload row and no stored object.


def _kept(api: Api, settings: Settings) -> tuple[int, list[str]]:
    """Upload rows, and the objects on the storage disk."""

    async def count(context: Any) -> int:
        async with unit_of_work(context.sessions) as session:
            return int(await session.scalar(select(func.count()).select_from(Upload)) or 0)

    rows = api.client.portal.call(count, api.client.app.state.context)  # type: ignore[attr-defined,union-attr]
    root = Path(str(settings.storage.local_root))
    return rows, sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _refused_cleanly(api: Api, settings: Settings, response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert re.search(r"[\u4e00-\u9fff]", error["message"]), error
    assert _kept(api, settings) == (0, []), "a refused upload left something behind"


def _zip_of(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def _saved(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(buffer, fmt)
    return buffer.getvalue()


def _gif_that_is_javascript() -> bytes:
    """GIF89a, then a logical screen width of "/*" opening a JavaScript comment, closed after the image."""
    gif = _saved("GIF")
    return b"GIF89a/*" + gif[8:] + b"*/=alert(document.domain);"


SCRIPT = b"<script>alert(document.cookie)</script>"
HALF_A_PHOTO = functools.cache(lambda: DEFAULT_PHOTO.read_bytes()[: DEFAULT_PHOTO.stat().st_size // 2])
# name -> (the file's bytes, status, code). Made lazily: some take a moment to build.
HOSTILE: dict[str, tuple[Callable[[], bytes], int, str]] = {
    # Decompression bombs: refused from the header's declared size, before any pixel is decoded.
    "pixel bomb: 50000x50000 PNG of zeros": (cached_bomb, 413, "image_too_large"),
    "PNG header of 100000x100000, no data": (lambda: png_header_only(100_000, 100_000), 413, "image_too_large"),
    "PNG of 8000x8000: sides allowed, 64 MP too many": (lambda: png_header_only(8000, 8000), 413, "image_too_large"),
    "JPEG frame header claiming 65000x65000": (lambda: jpeg_declaring(65_000, 65_000), 413, "image_too_large"),
    "WebP canvas of 16384x16384": (lambda: webp_declaring(16_384, 16_384), 413, "image_too_large"),
    # Compressed metadata that inflates to 16 MB: the decoder's own cap (1 MB of text) refuses it.
    "PNG text chunk (zTXt) inflating to 16 MB": (
        lambda: png_with_chunk(b"zTXt", b"Comment\x00\x00" + deflated_zeros(16 << 20)),
        422,
        "image_corrupt",
    ),
    # Wrong types, whatever the name says.
    "text named .jpg": (lambda: b"hello, this is not a photo\n" * 10, 422, "not_an_image"),
    "empty file": (lambda: b"", 422, "not_an_image"),
    "GIF": (lambda: _saved("GIF"), 422, "unsupported_image_type"),
    "SVG with a script": (
        lambda: b'<svg xmlns="http://www.w3.org/2000/svg">' + SCRIPT + b"</svg>",
        422,
        "not_an_image",
    ),
    "PDF": (lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", 422, "not_an_image"),
    "HTML page with a JPEG after it": (lambda: b"<html>" + SCRIPT + b"</html>" + small_jpeg(7), 422, "not_an_image"),
    "ZIP holding a JPEG": (lambda: _zip_of("photo.jpg", small_jpeg(8)), 422, "not_an_image"),
    "GIF that is also JavaScript": (_gif_that_is_javascript, 422, "unsupported_image_type"),
    "BMP": (lambda: _saved("BMP"), 422, "unsupported_image_type"),
    "TIFF": (lambda: _saved("TIFF"), 422, "unsupported_image_type"),
    "AVIF (no decoder here)": (
        lambda: b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(64),
        422,
        "unsupported_image_type",
    ),
    "JPEG start of image and nothing else": (lambda: b"\xff\xd8\xff", 422, "image_corrupt"),
    "truncated JPEG (first half of a real photo)": (HALF_A_PHOTO, 422, "image_corrupt"),
    # 200 copies of one scan, 13 KB: each decoded over the whole image (seconds of CPU; 10 MB of them, an hour).
    "progressive JPEG repeating one scan 200 times": (
        lambda: progressive_jpeg(repeat_last_scan=200),
        422,
        "image_too_complex",
    ),
}


def test_a_progressive_jpeg_with_its_usual_scans_is_accepted(api: Api) -> None:
    response = api.upload(api.reporter("alice"), data=progressive_jpeg(), filename="photo.jpg")
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_files_are_refused_cleanly(api: Api, settings: Settings, name: str) -> None:
    make, status, code = HOSTILE[name]
    response = api.upload(api.reporter("alice"), data=make(), filename="photo.jpg")
    _refused_cleanly(api, settings, response, status, code)


PAYLOAD_MARKERS = (b"<script", b"<?php", b"PK\x03\x04", b"<html", b"alert(")
# Polyglots whose image part is a valid picture: accepted as that picture. The original is kept byte for byte
# as evidence (its SHA-256 is the chain of custody) and no route serves it; what is served is re-encoded from
# the pixels, so no byte of the payload reaches a served copy.
POLYGLOTS: dict[str, Callable[[], bytes]] = {
    "JPEG with a ZIP appended": lambda: small_jpeg(9) + _zip_of("shell.php", b"<?php system($_GET['c']); ?>"),
    "JPEG with an HTML page appended": lambda: small_jpeg(10) + b"<html>" + SCRIPT + b"</html>",
    "JPEG with PHP in a comment, in EXIF and after the image": lambda: jpeg_with_payload(
        b"<?php system($_GET['c']); ?>"
    ),
    "PNG with a script in a text chunk and after IEND": lambda: (
        png_with_chunk(b"tEXt", b"Comment\x00" + SCRIPT) + SCRIPT
    ),
    "PNG whose pixel stream inflates to 32 MB": png_with_long_data,
}


@pytest.mark.parametrize("name", list(POLYGLOTS))
def test_polyglots_are_served_only_as_re_encoded_pixels(api: Api, settings: Settings, name: str) -> None:
    data = POLYGLOTS[name]()
    response = api.upload(api.reporter("alice"), data=data, filename="photo.jpg")
    assert response.status_code == 201, response.text
    view = response.json()
    assert "original" not in response.text
    for url in (view["display_url"], view["thumbnail_url"]):
        served = _fetch(api, url)
        assert Image.open(io.BytesIO(served)).format == "JPEG"
        assert served.endswith(b"\xff\xd9")  # nothing after the end of the image
        for marker in PAYLOAD_MARKERS:
            assert marker not in served, (url, marker)
    _, objects = _kept(api, settings)
    [original] = [key for key in objects if "/original." in key]
    # The original is kept as it came, and a URL to it that we did not sign is refused.
    assert (Path(str(settings.storage.local_root)) / original).read_bytes().endswith(data[-16:])
    unsigned = api.client.get(f"/v1/media/{original}")
    assert unsigned.status_code == 403 and unsigned.json()["error"]["code"] == "invalid_signature"


def _stream(size: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        yield b"\x00" * min(chunk, size - sent)
        sent += chunk


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> tuple[bytes, str]:
    """A multipart/form-data body by hand: (field name, filename or None for a text field, content)."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        body += b"Content-Type: image/jpeg\r\n" if filename else b""
        body += b"\r\n" + content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _post(api: Api, headers: dict[str, str], content: Any, content_type: str, **extra: str) -> Any:
    return api.client.post("/v1/uploads", headers={**headers, "Content-Type": content_type, **extra}, content=content)


def test_oversized_bodies_are_refused_however_they_come(api: Api, settings: Settings) -> None:
    headers = api.reporter("alice")
    limit = settings.intake.max_upload_bytes
    photo = small_jpeg(11)
    over, content_type = _multipart([("file", "a.jpg", photo + b"\x00" * limit)])
    # A Content-Length over the limit is refused before the body is read.
    _refused_cleanly(api, settings, _post(api, headers, over, content_type), 413, "file_too_large")
    # A Content-Length that lies (says 1000 bytes, sends eleven megabytes): the bytes are counted as they come in.
    # (Over a socket, uvicorn reads no more than the length says; the rest is not this request.)
    lying = _post(api, headers, over, content_type, **{"Content-Length": "1000"})
    _refused_cleanly(api, settings, lying, 413, "file_too_large")
    # Chunked, with no length at all.
    opening, content_type = _multipart([("file", "a.jpg", photo)])
    head = opening[: opening.index(photo) + len(photo)]

    def chunked() -> Iterator[bytes]:
        yield head
        yield from _stream(limit + 1)
        yield b"\r\n--b0undary--\r\n"

    _refused_cleanly(api, settings, _post(api, headers, chunked(), content_type), 413, "file_too_large")
    # Exactly at the limit is still a photo (padding after the end of the image is ignored by decoders).
    at_limit, content_type = _multipart([("file", "a.jpg", photo + b"\x00" * (limit - len(photo)))])
    assert _post(api, headers, at_limit, content_type).status_code == 201


def test_malformed_multipart_is_refused_cleanly(api: Api, settings: Settings) -> None:
    headers = api.reporter("alice")
    photo = small_jpeg(12)
    cases: list[tuple[str, tuple[bytes, str], int, str]] = [
        ("no file field", _multipart([("purpose", None, b"report")]), 422, "file_missing"),
        ("the file under another name", _multipart([("photo", "a.jpg", photo)]), 422, "file_missing"),
        (
            "two files",
            _multipart([("file", "a.jpg", photo), ("file", "b.jpg", small_jpeg(13))]),
            422,
            "malformed_multipart",
        ),
        (
            "a file and another file field",
            _multipart([("file", "a.jpg", photo), ("x", "b.jpg", photo)]),
            422,
            "malformed_multipart",
        ),
        (
            "a huge field name",
            _multipart([("n" * 200_000, None, b"x"), ("file", "a.jpg", photo)]),
            422,
            "malformed_multipart",
        ),
        (
            "a huge text field",
            _multipart([("note", None, b"x" * 100_000), ("file", "a.jpg", photo)]),
            422,
            "malformed_multipart",
        ),
        (
            "too many text fields",
            _multipart([*[(f"f{i}", None, b"x") for i in range(50)], ("file", "a.jpg", photo)]),
            422,
            "malformed_multipart",
        ),
        ("a huge file name", _multipart([("file", "a" * 200_000 + ".jpg", photo)]), 422, "malformed_multipart"),
        ("no boundary", (b"--x\r\n\r\n", "multipart/form-data"), 422, "malformed_multipart"),
        # A body cut off inside the file part (a client gone mid-upload): the part never ends, so there is no file.
        (
            "cut off inside the file",
            (_multipart([("file", "a.jpg", photo)])[0][:-40], _multipart([])[1]),
            422,
            "file_missing",
        ),
        ("not multipart", (photo, "image/jpeg"), 415, "unsupported_media_type"),
    ]
    for name, (content, content_type), status, code in cases:
        response = _post(api, headers, content, content_type)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), (name, response.text)
        _refused_cleanly(api, settings, response, status, code)
