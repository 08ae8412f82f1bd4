from __future__ import annotations

import base64
import os

import pytest
from pydantic import ValidationError

from app.core.config import SecuritySettings, Settings, WeChatSettings


def _real_security() -> SecuritySettings:
    return SecuritySettings(
        token_secret=os.urandom(24).hex(),
        field_encryption_key=base64.b64encode(os.urandom(32)).decode(),
        blind_index_key=os.urandom(24).hex(),
        url_signing_key=os.urandom(24).hex(),
    )


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValidationError) as error:
        Settings(environment="production")
    assert "security.token_secret" in str(error.value)
    assert "wechat.app_secret" in str(error.value)


def test_production_refuses_the_dev_login() -> None:
    wechat = WeChatSettings(app_secret="real-secret", dev_login=True)
    with pytest.raises(ValidationError, match="dev_login"):
        Settings(environment="production", security=_real_security(), wechat=wechat)


def test_production_with_real_secrets_starts() -> None:
    settings = Settings(
        environment="production", security=_real_security(), wechat=WeChatSettings(app_secret="real-secret")
    )
    assert settings.environment == "production"


def test_settings_are_read_from_nested_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAZARD_DATABASE__URL", "postgresql+asyncpg://u@h/db")
    monkeypatch.setenv("HAZARD_INTAKE__MAX_UPLOAD_BYTES", "1234")
    settings = Settings()
    assert settings.database.url == "postgresql+asyncpg://u@h/db"
    assert settings.intake.max_upload_bytes == 1234
