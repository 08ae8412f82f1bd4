"""Tokens, password hashing, field encryption and blind indexes.

Tokens are our own signed JWTs: HS256 pinned (the header never chooses the algorithm), and exp, iat, sub, aud and
iss are all required. Reporters and staff get different audiences so that a reporter token is useless on staff
routes and the reverse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.core.errors import Unauthenticated

TOKEN_ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss"]


class InvalidToken(Unauthenticated):
    code = "invalid_token"
    message = "登录已失效，请重新登录"


# How many verified tokens a process remembers (``TokenCodec.decode``): about 1 KB each.
VERIFIED_TOKENS = 4096


@dataclass(frozen=True)
class TokenCodec:
    """Issues and verifies the service's tokens.

    A token verified once is remembered, by its exact text, until it expires: every request of a mini-program
    carries the same token, and parsing and verifying it again (base64 and JSON, the HMAC, the claim checks) cost
    36 µs a request, 58 µs where the audience is read first, against 0.4 µs remembered. A remembered token is
    only accepted for an audience it was verified for and only before its ``exp``; any other text, a single
    character changed included, is verified in full. The memory is bounded (``VERIFIED_TOKENS``, oldest forgotten
    first) and belongs to the codec, so to its secret and issuer.
    """

    secret: str
    issuer: str
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)
    _verified: dict[str, dict[str, Any]] = field(default_factory=dict, init=False, compare=False, repr=False)

    def issue(self, subject: str, audience: str, lifetime: timedelta, **claims: Any) -> tuple[str, datetime]:
        now = datetime.now(UTC)
        expires_at = now + lifetime
        payload = {"sub": subject, "aud": audience, "iss": self.issuer, "iat": now, "exp": expires_at, **claims}
        return jwt.encode(payload, self.secret, algorithm=TOKEN_ALGORITHM), expires_at

    def decode(self, token: str, audience: str | list[str]) -> dict[str, Any]:
        """The verified claims; ``audience``: the one expected, or those accepted (the claims say which)."""
        claims = self._verified.get(token)
        if claims is not None and claims["aud"] in ([audience] if isinstance(audience, str) else audience):
            if self.clock() >= claims["exp"]:
                raise InvalidToken()  # expired since it was verified, as jwt.decode would find
            return dict(claims)
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[TOKEN_ALGORITHM],
                audience=audience,
                issuer=self.issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken() from exc
        if isinstance(claims["aud"], str) and isinstance(claims["exp"], int | float):
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.pop(next(iter(self._verified)), None)
            self._verified[token] = dict(claims)
        return claims

    def audience_of(self, token: str) -> str:
        """The audience a token names, unverified: only to choose which audience to verify it against ("" if it
        names none or several). Not a token at all: ``InvalidToken``."""
        claims = self._verified.get(token)
        if claims is not None:
            return str(claims["aud"])
        try:
            audience = jwt.decode(token, options={"verify_signature": False}).get("aud")
        except jwt.PyJWTError as exc:
            raise InvalidToken() from exc
        return audience if isinstance(audience, str) else ""


# OWASP's minimum Argon2id profile (19 MiB, t=2, p=1): ~30 ms a verify on this class of machine.
_password_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the username is unknown, so that timing does not reveal which usernames exist.
_DUMMY_HASH = _password_hasher.hash("no-such-user-" + secrets.token_hex(8))


def hash_secret(secret: str) -> str:
    return _password_hasher.hash(secret)


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    try:
        return _password_hasher.verify(stored_hash or _DUMMY_HASH, secret) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class FieldCipher:
    """AES-256-GCM for sensitive identity fields at rest.

    Stored form: ``<key id>:<base64(nonce || ciphertext+tag)>``. The key id lets old rows be read while new rows
    are written under a new key (see docs/operations.md, key rotation).
    """

    def __init__(self, keys: dict[str, bytes], current_key_id: str) -> None:
        for key_id, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"field encryption key {key_id!r} must be 32 bytes")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._current = current_key_id

    @classmethod
    def from_setting(cls, value: str) -> FieldCipher:
        """``value`` is one base64 key (id ``k1``) or ``id1=base64,id2=base64`` with the first one current."""
        if "=" in value.rstrip("="):
            pairs = [item.split("=", 1) for item in value.split(",")]
            keys = {key_id.strip(): base64.b64decode(key) for key_id, key in pairs}
            return cls(keys, pairs[0][0].strip())
        return cls({"k1": base64.b64decode(value)}, "k1")

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self._current].encrypt(nonce, plaintext.encode(), self._current.encode())
        return f"{self._current}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, stored: str) -> str:
        key_id, _, blob = stored.partition(":")
        raw = base64.b64decode(blob)
        return self._keys[key_id].decrypt(raw[:12], raw[12:], key_id.encode()).decode()


@dataclass(frozen=True)
class BlindIndex:
    """A keyed hash that lets us find a row by an identity value without storing the value in the clear."""

    key: bytes

    def digest(self, value: str, purpose: str) -> str:
        return hmac.new(self.key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def request_fingerprint(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()
