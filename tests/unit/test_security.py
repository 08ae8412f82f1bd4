from __future__ import annotations

import base64
import os
import time
from datetime import timedelta

import jwt
import pytest

from app.core import security
from app.core.security import FieldCipher, InvalidToken, TokenCodec, hash_secret, verify_secret


def test_tokens_round_trip_and_check_audience() -> None:
    codec = TokenCodec(secret="s" * 32, issuer="hazard")
    token, _ = codec.issue("reporter:1", "aud-a", timedelta(minutes=5))
    assert codec.decode(token, "aud-a")["sub"] == "reporter:1"
    with pytest.raises(InvalidToken):
        codec.decode(token, "aud-b")
    with pytest.raises(InvalidToken):
        TokenCodec(secret="t" * 32, issuer="hazard").decode(token, "aud-a")
    with pytest.raises(InvalidToken):
        TokenCodec(secret="s" * 32, issuer="other").decode(token, "aud-a")


def _remembered_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, a token that is not remembered fails: a full verification would raise."""

    def no_decode(*args: object, **kwargs: object) -> None:
        raise jwt.InvalidSignatureError("verified again")

    monkeypatch.setattr(jwt, "decode", no_decode)


def test_a_verified_token_is_remembered_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [time.time()]
    codec = TokenCodec(secret="s" * 32, issuer="hazard", clock=lambda: now[0])
    token, expires_at = codec.issue("reporter:1", "aud-a", timedelta(minutes=5))
    assert codec.decode(token, "aud-a")["sub"] == "reporter:1"
    _remembered_only(monkeypatch)
    claims = codec.decode(token, ["aud-b", "aud-a"])
    assert claims["sub"] == "reporter:1"
    claims["sub"] = "reporter:2"  # the caller's copy, not the remembered claims
    assert codec.decode(token, "aud-a")["sub"] == "reporter:1"
    assert codec.audience_of(token) == "aud-a"
    now[0] = expires_at.timestamp() - 1
    assert codec.decode(token, "aud-a")["sub"] == "reporter:1"
    now[0] = expires_at.timestamp()
    with pytest.raises(InvalidToken):
        codec.decode(token, "aud-a")


def test_a_remembered_token_is_no_key_to_anything_else() -> None:
    codec = TokenCodec(secret="s" * 32, issuer="hazard")
    token, _ = codec.issue("reporter:1", "aud-a", timedelta(minutes=5))
    codec.decode(token, "aud-a")
    with pytest.raises(InvalidToken):
        codec.decode(token, "aud-b")  # not the audience it was verified for: verified in full, and refused
    header, payload, signature = token.split(".")
    forged = jwt.encode({**jwt.decode(token, options={"verify_signature": False}), "sub": "reporter:2"}, "x" * 32)
    changed = [
        f"{header}.{payload}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}",
        f"{header}.{forged.split('.')[1]}.{signature}",
    ]
    for text in changed:
        with pytest.raises(InvalidToken):
            codec.decode(text, "aud-a")
    with pytest.raises(InvalidToken):
        codec.audience_of("not.a.token")
    expired, _ = codec.issue("reporter:1", "aud-a", timedelta(seconds=-1))
    with pytest.raises(InvalidToken):
        codec.decode(expired, "aud-a")  # never remembered: jwt.decode refuses it


def test_remembered_tokens_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(security, "VERIFIED_TOKENS", 3)
    codec = TokenCodec(secret="s" * 32, issuer="hazard")
    tokens = [codec.issue(f"reporter:{i}", "aud-a", timedelta(minutes=5))[0] for i in range(5)]
    for token in tokens:
        codec.decode(token, "aud-a")
    _remembered_only(monkeypatch)
    for token in tokens[2:]:
        codec.decode(token, "aud-a")
    for token in tokens[:2]:  # the oldest, forgotten: verified in full again, which now fails
        with pytest.raises(InvalidToken):
            codec.decode(token, "aud-a")


def test_passwords() -> None:
    stored = hash_secret("correct horse battery")
    assert verify_secret(stored, "correct horse battery")
    assert not verify_secret(stored, "wrong")
    assert not verify_secret(None, "anything")
    assert not verify_secret("not-a-hash", "anything")


def test_field_cipher_rotation() -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    old = FieldCipher.from_setting(base64.b64encode(old_key).decode())
    sealed_under_old = old.encrypt("13800000000")
    assert "13800000000" not in sealed_under_old
    rotated = FieldCipher.from_setting(
        f"k2={base64.b64encode(new_key).decode()},k1={base64.b64encode(old_key).decode()}"
    )
    assert rotated.decrypt(sealed_under_old) == "13800000000"
    sealed_under_new = rotated.encrypt("13800000000")
    assert sealed_under_new.startswith("k2:")
    assert sealed_under_new != rotated.encrypt("13800000000")  # fresh nonce every time
    with pytest.raises(KeyError):
        old.decrypt(sealed_under_new)
