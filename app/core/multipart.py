"""Reading one file from a multipart/form-data body (the shape ``wx.uploadFile`` sends) within a byte limit.

Starlette's form parser caps text parts but not file parts: a file part is spooled to disk however large it is.
So the body is refused up front when its Content-Length is over the limit, and otherwise counted while it streams
in and refused the moment it passes the limit: an oversized body is never buffered whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from app.core.errors import DomainError, InvalidInput, PayloadTooLarge

# Room for the multipart framing and the small text fields wx.uploadFile may send beside the file.
FRAMING_ALLOWANCE = 64 * 1024
MAX_TEXT_FIELDS = 20
MAX_TEXT_FIELD_BYTES = 4096


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"
    message = "请以 multipart/form-data 上传文件"


class MalformedMultipart(InvalidInput):
    code = "malformed_multipart"
    message = "上传内容格式有误"


class FileMissing(InvalidInput):
    code = "file_missing"
    message = "请求中没有文件"


class FileTooLarge(PayloadTooLarge):
    code = "file_too_large"
    message = "文件过大"


@dataclass(frozen=True)
class ReceivedFile:
    data: bytes
    filename: str | None
    fields: dict[str, str]


async def read_single_file(request: Request, field_name: str, max_bytes: int) -> ReceivedFile:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType()
    body_limit = max_bytes + FRAMING_ALLOWANCE
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > body_limit:
        raise FileTooLarge(limit_bytes=max_bytes)
    parser = MultiPartParser(
        request.headers,
        _limited(request.stream(), body_limit, max_bytes),
        max_files=1,
        max_fields=MAX_TEXT_FIELDS,
        max_part_size=MAX_TEXT_FIELD_BYTES,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise MalformedMultipart(details=str(exc)) from exc
    try:
        return await _single_file(form.multi_items(), field_name, max_bytes)
    finally:
        await form.close()


async def _single_file(items: list[tuple[str, str | UploadFile]], field_name: str, max_bytes: int) -> ReceivedFile:
    upload = next((v for k, v in items if k == field_name and isinstance(v, UploadFile)), None)
    if upload is None:
        raise FileMissing(field=field_name)
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileTooLarge(limit_bytes=max_bytes)
    fields = {k: v for k, v in items if isinstance(v, str)}
    return ReceivedFile(data=data, filename=upload.filename, fields=fields)


async def _limited(stream: AsyncIterator[bytes], body_limit: int, max_bytes: int) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > body_limit:
            raise FileTooLarge(limit_bytes=max_bytes)
        yield chunk
