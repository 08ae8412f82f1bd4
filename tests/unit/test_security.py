from __future__ import annotations

import base64
import os
from datetime import timedelta

import pytest

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
