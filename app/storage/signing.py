"""HMAC-signed media URLs for the local backend: `{base_url}/v1/media/{key}?expires=<unix>&signature=<hex>`.

The signature is HMAC-SHA256 over a purpose tag, the key and the expiry, so a URL cannot be stretched in time
or pointed at another object, and the same secret cannot be replayed for an unrelated HMAC elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import datetime

from app.core.errors import Forbidden
from app.storage.base import validate_key

MEDIA_PATH = "/v1/media/"
_PURPOSE = b"media-get-v1"
_MIN_SECRET_BYTES = 16


class InvalidSignature(Forbidden):
    code = "invalid_signature"
    message = "链接无效"


class UrlExpired(Forbidden):
    code = "url_expired"
    message = "链接已过期，请刷新后重试"


class UrlSigner:
    def __init__(self, secret: bytes, base_url: str) -> None:
        if len(secret) < _MIN_SECRET_BYTES:
            # An empty or tiny secret would make every URL forgeable; refuse at start-up, not in production.
            raise ValueError(f"media URL secret must be at least {_MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._base_url = base_url.rstrip("/")

    def signature(self, key: str, expires: int) -> str:
        message = b"\n".join((_PURPOSE, key.encode(), str(expires).encode()))
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, key: str, expires_at: datetime) -> str:
        """Absolute URL for `key` valid until `expires_at` (tz-aware)."""
        validate_key(key)
        expires = int(expires_at.timestamp())
        # Keys only contain [A-Za-z0-9._-/], so they need no percent-encoding.
        return f"{self._base_url}{MEDIA_PATH}{key}?expires={expires}&signature={self.signature(key, expires)}"

    def verify(self, key: str, expires: int, signature: str, *, now: float | None = None) -> None:
        """Raise InvalidSignature or UrlExpired.

        The signature is checked first, so a forged URL learns nothing about expiry.
        """
        expected = self.signature(key, expires).encode()
        # compare_digest on str raises TypeError for non-ASCII; compare bytes so junk is merely "invalid".
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            raise InvalidSignature()
        if expires < (time.time() if now is None else now):
            raise UrlExpired()
