"""The object-storage interface, its errors and the key rules shared by every backend.

Photos are evidence, so both backends keep objects private; readers get short-lived signed GET URLs.
Keys are validated here, once, so a key accepted by the local backend is accepted by S3 and vice versa.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from app.core.errors import InvalidInput, NotFound, ServiceUnavailable

MAX_KEY_LENGTH = 512
# Not part of the S3 rules, but local disks cap file names at 255 bytes (and the local backend adds a suffix);
# capping segments here keeps the two backends in agreement instead of failing on disk only.
MAX_SEGMENT_LENGTH = 200
MAX_CONTENT_TYPE_LENGTH = 255
# Presigned S3 URLs cannot live longer than 7 days; the local backend follows the same bounds.
MIN_URL_TTL = timedelta(seconds=1)
MAX_URL_TTL = timedelta(days=7)

_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
# Printable ASCII only: the value ends up in an HTTP header (S3) or a one-line file header (local).
_CONTENT_TYPE = re.compile(r"[\x21-\x7e][\x20-\x7e]*")


class StorageUnavailable(ServiceUnavailable):
    code = "storage_unavailable"
    message = "存储服务暂时不可用，请稍后重试"


class ObjectNotFound(NotFound):
    code = "object_not_found"
    message = "文件不存在"


class InvalidObjectKey(InvalidInput):
    code = "invalid_object_key"
    message = "文件路径不合法"


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    modified_at: datetime  # tz-aware, UTC


class ObjectStorage(Protocol):
    """Private object store.

    Every method may raise StorageUnavailable; a malformed key argument raises InvalidObjectKey.
    """

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store (or overwrite) an object atomically: readers see the old or the new bytes, never a mix."""
        ...

    async def get(self, key: str) -> bytes:
        """Return the bytes; raises ObjectNotFound."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        ...

    async def list(self, prefix: str) -> builtins.list[StoredObject]:
        """Objects whose key starts with `prefix` (a plain string prefix, "" for all), sorted by key."""
        ...

    async def signed_url(self, key: str, expires_in: timedelta, *, issued_at: datetime | None = None) -> str:
        """A GET-only URL valid for `expires_in` (1 s to 7 days) from `issued_at` (default: now). Does not check that
        the object exists. The same key, lifetime and `issued_at` give the same URL, so a cacheable public response
        that signs as of a fixed instant stays byte-identical (and keeps its ETag) while its URLs stay valid."""
        ...

    async def check(self) -> None:
        """Readiness probe: raises StorageUnavailable if the store cannot be used right now."""
        ...


def validate_key(key: str) -> str:
    """Return `key` unchanged if it is a valid object key, else raise InvalidObjectKey."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidObjectKey(field="key")
    for segment in key.split("/"):
        if segment in (".", "..") or len(segment) > MAX_SEGMENT_LENGTH or not _SEGMENT.fullmatch(segment):
            raise InvalidObjectKey(field="key")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix is "" or a valid key, optionally followed by one "/" (e.g. "reports/42/")."""
    if prefix == "":
        return prefix
    validate_key(prefix.removesuffix("/"))
    return prefix


def validate_content_type(content_type: str) -> str:
    if len(content_type) > MAX_CONTENT_TYPE_LENGTH or not _CONTENT_TYPE.fullmatch(content_type):
        raise InvalidInput("文件类型不合法", field="content_type")
    return content_type


def url_ttl_seconds(expires_in: timedelta) -> int:
    """Whole seconds of a signed-URL lifetime; out-of-range lifetimes are a programming error."""
    if not MIN_URL_TTL <= expires_in <= MAX_URL_TTL:
        raise ValueError(f"expires_in must be between {MIN_URL_TTL} and {MAX_URL_TTL}, got {expires_in}")
    return int(expires_in.total_seconds())
