"""The committed openapi.yaml is generated from the app by this module (a test checks they agree)."""

from __future__ import annotations

from typing import Any

import yaml

from app.core.config import Settings


def openapi_document() -> dict[str, Any]:
    from app.main import create_app

    return create_app(Settings(environment="development", embedded_worker=False)).openapi()


def openapi_yaml() -> str:
    return yaml.safe_dump(openapi_document(), allow_unicode=True, sort_keys=False, width=120)
