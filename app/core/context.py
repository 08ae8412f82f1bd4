"""What one running process holds: settings and the clients built from them, made once by the app factory."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from app.core.config import Settings
from app.core.security import BlindIndex, FieldCipher, TokenCodec
from app.storage.base import ObjectStorage


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # For reads that need no transaction (app.core.session.ReadSession, the staff lookup): on PostgreSQL each
    # statement runs on its own, in autocommit; the same pool as ``engine``.
    read_engine: AsyncEngine
    read_sessions: async_sessionmaker[AsyncSession]
    storage: ObjectStorage
    http: httpx.AsyncClient
    tokens: TokenCodec
    cipher: FieldCipher
    blind_index: BlindIndex
    # Bounds CPU-heavy work (image decoding) run in threads to the number of cores.
    cpu_limiter: anyio.CapacityLimiter
    # Per-process caches owned by domain packages (e.g. the routing snapshot), keyed by package name.
    caches: dict[str, Any] = field(default_factory=dict)

    @property
    def signed_url_lifetime(self) -> timedelta:
        return timedelta(seconds=self.settings.intake.signed_url_seconds)


def build_security(settings: Settings) -> tuple[TokenCodec, FieldCipher, BlindIndex]:
    security = settings.security
    return (
        TokenCodec(secret=security.token_secret, issuer=security.token_issuer),
        FieldCipher.from_setting(security.field_encryption_key),
        BlindIndex(key=security.blind_index_key.encode()),
    )


async def get_context(connection: HTTPConnection) -> AppContext:
    # Dependencies that do no I/O are still ``async def``: FastAPI runs a plain ``def`` one in its thread pool, a
    # hop between threads on every request for what is an attribute read.
    context: AppContext = connection.app.state.context
    return context


def build_storage(settings: Settings) -> ObjectStorage:
    from app.storage.local import LocalDiskStorage
    from app.storage.s3 import S3Storage
    from app.storage.signing import UrlSigner

    config = settings.storage
    if config.backend == "s3":
        return S3Storage(
            endpoint=config.s3_endpoint,
            access_key=config.s3_access_key,
            secret_key=config.s3_secret_key,
            bucket=config.s3_bucket,
            secure=config.s3_secure,
            region=config.s3_region,
            public_endpoint=config.s3_public_endpoint,
        )
    signer = UrlSigner(settings.security.url_signing_key.encode(), settings.public_base_url)
    return LocalDiskStorage(config.local_root, signer)


def build_context(settings: Settings) -> AppContext:
    from app.core.db import create_engine, create_session_factory

    engine = create_engine(settings.database)
    read_engine = _autocommit(engine)
    tokens, cipher, blind_index = build_security(settings)
    return AppContext(
        settings=settings,
        engine=engine,
        sessions=create_session_factory(engine),
        read_engine=read_engine,
        read_sessions=create_session_factory(read_engine),
        storage=build_storage(settings),
        http=httpx.AsyncClient(timeout=settings.wechat.timeout_seconds),
        tokens=tokens,
        cipher=cipher,
        blind_index=blind_index,
        cpu_limiter=anyio.CapacityLimiter(os.cpu_count() or 1),
    )


def _autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The engine (its pool shared) running each statement on its own, with no BEGIN before nor COMMIT after (a
    round trip each), on PostgreSQL. SQLite keeps its transactions: app.core.db sets the driver's isolation level
    itself (BEGIN IMMEDIATE), which SQLAlchemy's AUTOCOMMIT switch would reset when a connection goes back to the
    pool; and there is no network to save."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


async def close_context(context: AppContext) -> None:
    await context.http.aclose()
    await context.engine.dispose()
