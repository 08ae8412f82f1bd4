"""The application factory. ``uvicorn --factory app.main:create_app`` serves it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

from app.core.config import Settings, load_settings
from app.core.context import AppContext, build_context, close_context
from app.core.errors import ServiceUnavailable
from app.core.http import RequestContextMiddleware, error_responses, install_error_handlers
from app.core.logging import configure_logging
from app.identity.router import router as identity_router
from app.intake import maintenance
from app.intake.router import router as intake_router
from app.notifications import worker as outbox_worker
from app.notifications.router import router as notifications_router
from app.open311.router import admin_router as open311_admin_router
from app.open311.router import not_found as open311_not_found
from app.open311.router import router as open311_router
from app.publication.router import public_router as publication_public_router
from app.publication.router import router as publication_router
from app.rewards import router as rewards_router
from app.rewards import service as rewards_service
from app.routing import reference as routing_reference
from app.routing.router import router as routing_router
from app.statistics import rollup as statistics_rollup
from app.statistics.router import router as statistics_router
from app.storage.router import router as media_router
from app.workflow import escalation
from app.workflow.router import admin_router as workflow_admin_router
from app.workflow.router import reporter_router as workflow_reporter_router
from app.workflow.router import router as workflow_router

log = logging.getLogger(__name__)

API_TITLE = "随手拍 安全隐患举报 API"
API_VERSION = "0.1.0"
SENDER_SHUTDOWN_SECONDS = 25.0


class NotReady(ServiceUnavailable):
    code = "not_ready"
    message = "服务尚未就绪"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = build_context(settings)
        app.state.context = context
        app.state.storage = context.storage  # the media route serves local-disk objects from here
        await _prepare_storage(context)
        tasks = [asyncio.create_task(_warm_routing(context))]
        stop_sending = asyncio.Event()
        sender = None
        if settings.embedded_worker:
            # The embedded mode: the outbox, the deadline escalations and the cleanup run in the API process.
            sender = asyncio.create_task(outbox_worker.run_worker(context, stop=stop_sending))
            tasks += [
                asyncio.create_task(maintenance.run_periodically(context)),
                asyncio.create_task(escalation.run_periodically(context)),
                asyncio.create_task(rewards_service.run_periodically(context)),
                asyncio.create_task(statistics_rollup.run_periodically(context)),
            ]
        if settings.environment != "test":
            # A full collection first: in the test suite, with every earlier test's objects on the heap, that was
            # most of each test's time.
            _freeze_startup_objects()
        try:
            yield
        finally:
            gc.unfreeze()
            if sender is not None:
                # Let sends in flight finish and be recorded: a cancelled send could go out twice after its lease.
                stop_sending.set()
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(sender, SENDER_SHUTDOWN_SECONDS)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await close_context(context)

    production = settings.environment == "production"
    app = FastAPI(
        title=API_TITLE,
        version=API_VERSION,
        lifespan=lifespan,
        docs_url=None if production else "/docs",
        redoc_url=None,
        openapi_url=None if production else "/openapi.json",
        # A body that is not even JSON (or not UTF-8) is a 400 on any route that takes one.
        responses=error_responses(400),
    )
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)
    app.add_exception_handler(404, open311_not_found)
    app.include_router(identity_router)
    app.include_router(intake_router)
    app.include_router(routing_router)
    app.include_router(workflow_router)
    app.include_router(workflow_reporter_router)
    app.include_router(workflow_admin_router)
    app.include_router(notifications_router)
    app.include_router(rewards_router.router)
    app.include_router(rewards_router.reporter_router)
    app.include_router(rewards_router.public_router)
    app.include_router(rewards_router.admin_router)
    app.include_router(statistics_router)
    rewards_service.install()
    app.include_router(publication_router)
    app.include_router(publication_public_router)
    app.include_router(open311_router)
    app.include_router(open311_admin_router)
    app.include_router(media_router)
    _add_health_routes(app)
    return app


def _freeze_startup_objects() -> None:
    """What start-up made (modules, the app and its routes, settings: some 200,000 objects) lives as long as the
    process: out of the collector's sight, a full collection walks only what requests leave behind. Otherwise a
    full collection, every few hundred requests, walked them all: 135 ms measured, during which no request of the
    process moved, and most of the queue's p99 under load. ``gc.unfreeze()`` at shutdown hands them back (tests
    make many apps in one process)."""
    gc.collect()
    gc.freeze()


async def _warm_routing(context: AppContext) -> None:
    try:
        await routing_reference.warm(context)
    except Exception:
        # Not fatal: the first routing decision builds the snapshot itself.
        log.exception("could not build the routing snapshot at start-up")


async def _prepare_storage(context: AppContext) -> None:
    from app.storage.s3 import S3Storage

    if not isinstance(context.storage, S3Storage):
        return
    try:
        await context.storage.ensure_bucket()
    except ServiceUnavailable:
        # Start anyway: /readyz reports the store as down and uploads answer 503 until it is back.
        log.warning("object store unreachable at start-up")


def _add_health_routes(app: FastAPI) -> None:
    @app.get("/healthz", operation_id="healthz", tags=["health"], summary="进程存活")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz", operation_id="readyz", tags=["health"], summary="数据库与存储可用", responses=error_responses(503)
    )
    async def readyz() -> dict[str, str]:
        context: AppContext = app.state.context
        try:
            async with context.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            log.warning("database not ready", extra={"error": type(exc).__name__})
            raise NotReady("数据库不可用") from exc
        await context.storage.check()
        return {"status": "ready"}
