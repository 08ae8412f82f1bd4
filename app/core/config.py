"""One settings object, nested by concern, read once at start-up.

Nothing else in the code base reads the environment. Variables are prefixed ``HAZARD_`` and nested with ``__``,
e.g. ``HAZARD_DATABASE__URL`` or ``HAZARD_STORAGE__BACKEND=s3``. Outside development the settings refuse the
development placeholder secrets and the development-only WeChat login exchange.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_PREFIX = "dev-only-"


class DatabaseSettings(BaseModel):
    url: str = "sqlite+aiosqlite:///./var/hazard.db"
    echo: bool = False
    pool_size: int = 10
    # PostgreSQL: a statement running longer is cancelled by the server (a request blocked on a lock, a runaway
    # query); a server that says nothing at all for response_timeout_s (hung, or the network gone) is given up by the
    # client. Both answer 503 database_unavailable, and the connection is replaced, rather than hold a request and
    # a pooled connection forever. None: no limit (migrations, which may build an index over millions of rows).
    statement_timeout_s: float | None = Field(default=30.0, gt=0)
    response_timeout_s: float | None = Field(default=40.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    # WAL + NORMAL survives an application crash; FULL also survives power loss at a cost in commit rate.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class StorageSettings(BaseModel):
    backend: Literal["local", "s3"] = "local"
    local_root: Path = Path("./var/objects")
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str = "minioadmin"
    s3_secret_key: str = "minioadmin"
    s3_bucket: str = "hazard-evidence"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    s3_public_endpoint: str | None = None


class SecuritySettings(BaseModel):
    token_secret: str = DEV_SECRET_PREFIX + "token-secret-change-me-0123456789abcdef"
    token_issuer: str = "hazard-report"
    reporter_audience: str = "hazard-miniprogram"
    staff_audience: str = "hazard-staff"
    reporter_token_minutes: int = 7 * 24 * 60
    staff_token_minutes: int = 8 * 60
    # 32 random bytes, base64: AES-256-GCM key for sensitive identity fields at rest.
    field_encryption_key: str = base64.b64encode(b"dev-only-field-key-0123456789abc").decode()
    # HMAC key for blind indexes (searchable hashes of openid, phone, ID numbers).
    blind_index_key: str = DEV_SECRET_PREFIX + "blind-index-key-0123456789abcdef"
    url_signing_key: str = DEV_SECRET_PREFIX + "url-signing-key-0123456789abcdef"

    def placeholder_fields(self) -> list[str]:
        values = {
            "token_secret": self.token_secret,
            "blind_index_key": self.blind_index_key,
            "url_signing_key": self.url_signing_key,
            "field_encryption_key": base64.b64decode(self.field_encryption_key).decode("latin-1"),
        }
        return [name for name, value in values.items() if value.startswith(DEV_SECRET_PREFIX)]


class WeChatSettings(BaseModel):
    api_base: str = "https://api.weixin.qq.com"
    app_id: str = "wx-dev-app"
    app_secret: str = DEV_SECRET_PREFIX + "wechat-secret"
    timeout_seconds: float = 5.0
    # Development only: a code "dev:<name>" logs in as the reporter <name> without calling WeChat.
    dev_login: bool = False
    # Subscription-message templates by purpose: our key → the template id configured in the mini-program admin.
    templates: dict[str, str] = Field(
        default_factory=lambda: {
            "accepted": "dev-tmpl-accepted",
            "progress": "dev-tmpl-progress",
            "result": "dev-tmpl-result",
            "reward": "dev-tmpl-reward",
        }
    )
    # "formal" in production; "developer" or "trial" while testing the mini-program.
    miniprogram_state: Literal["developer", "trial", "formal"] = "formal"


class IntakeSettings(BaseModel):
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_side: int = 20_000
    unattached_upload_hours: int = 24
    max_photos_per_report: int = 9
    description_max_chars: int = 1000
    # A photo whose EXIF position is farther than this from the reported point flags the report.
    photo_distance_flag_m: float = 1000.0
    # A photo captured this long before the report was submitted flags the report.
    photo_age_flag_hours: int = 72
    # The county code used in report numbers when the point falls in no loaded jurisdiction.
    default_region_code: str = "441881"
    signed_url_seconds: int = 600
    # Duplicate candidates: open reports of the same category this close and this recent, or sharing a photo.
    duplicate_radius_m: float = 100.0
    duplicate_window_days: int = 30
    # Largest Hamming distance between two 64-bit perceptual hashes that still counts as the same photo. At most 7:
    # hashes are found by their eight bytes, and two hashes within 7 bits of each other share at least one byte.
    similar_photo_bits: int = Field(default=6, ge=0, le=7)
    idempotency_hours: int = 24


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HAZARD_", env_nested_delimiter="__", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    public_base_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    # Run the outbox and cleanup loops inside the API process (the embedded mode).
    embedded_worker: bool = True
    # Outbox worker: how many messages one pass claims, and how often an idle worker looks again.
    worker_batch_size: int = 50
    worker_idle_seconds: float = 2.0
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    wechat: WeChatSettings = Field(default_factory=WeChatSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        if self.environment != "production":
            return self
        problems = [f"security.{name}" for name in self.security.placeholder_fields()]
        if self.wechat.app_secret.startswith(DEV_SECRET_PREFIX):
            problems.append("wechat.app_secret")
        if self.wechat.dev_login:
            problems.append("wechat.dev_login (development only)")
        if len(base64.b64decode(self.security.field_encryption_key)) != 32:
            problems.append("security.field_encryption_key (must be 32 bytes, base64)")
        if problems:
            raise ValueError("production settings still use development values: " + ", ".join(problems))
        return self


def load_settings() -> Settings:
    """Read the environment once; called by the app factory and the CLI, nowhere else."""
    return Settings()
