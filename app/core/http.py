"""The HTTP edge: one JSON error shape, request ids, access logs.

Every error answer looks like ``{"error": {"code": "...", "message": "中文说明", "field": "...", "details": ...}}``
with a stable machine code. Unknown failures answer 500 ``internal_error`` without any internal detail.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.db import is_database_unavailable
from app.core.errors import DatabaseUnavailable, DomainError
from app.core.logging import request_id_var

log = logging.getLogger("app.http")

REQUEST_ID_HEADER = "X-Request-ID"

_HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求格式有误"),
    401: ("unauthenticated", "请先登录"),
    403: ("forbidden", "无权执行此操作"),
    404: ("not_found", "未找到该资源"),
    405: ("method_not_allowed", "不支持该请求方法"),
    406: ("not_acceptable", "不支持请求的响应格式"),
    413: ("payload_too_large", "请求内容过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    details: Any | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the error statuses a route can answer with."""
    return {
        status: {"model": ErrorResponse, "description": _HTTP_CODES.get(status, ("", "错误"))[1] or "错误"}
        for status in statuses
    }


def _error_json(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    error.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse({"error": error}, status_code=status)


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers = {"Retry-After": "5"} if exc.status == 503 else None
    response = JSONResponse(exc.body(), status_code=exc.status, headers=headers)
    return response


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or str(loc[0] if loc else "body")


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"field": _field_of(tuple(e.get("loc", ()))), "type": e.get("type"), "reason": e.get("msg")}
        for e in exc.errors()
    ]
    first = problems[0]["field"] if problems else None
    return _error_json(422, "validation_error", f"请求参数不合法：{first}", field=first, details=problems)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, message = _HTTP_CODES.get(exc.status_code, ("http_error", "请求无法处理"))
    response = _error_json(exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(_allowed_methods(request))
    return response


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette names only the first matching route's, which is wrong
    where two routes share a path (GET and POST of /v1/admin/departments)."""
    routes = request.app.router.routes
    return [
        method
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


async def _unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return _error_json(500, "internal_error", "服务器内部错误，请稍后重试")


async def _client_gone(request: Request, exc: Exception) -> JSONResponse:
    """The client went away before its body was all sent (a dropped mobile connection, a Content-Length that
    promised more): not a fault of the service, so no error log; the answer is never delivered, the access log
    shows 400."""
    log.info("client disconnected", extra={"path": request.url.path})
    return _error_json(400, "client_disconnected", "客户端在请求发送完成前断开了连接")


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A database that is down or restarting is a 503 the client retries (with its Idempotency-Key, so a commit
    whose answer was lost is replayed, not repeated); any other database error is a bug, answered 500."""
    if not is_database_unavailable(exc):
        return await _unexpected_error(request, exc)
    log.warning("database unavailable", extra={"error": type(exc).__name__, "detail": str(exc)[:200]})
    return await _domain_error(request, DatabaseUnavailable())


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(ConnectionError, _database_error)
    app.add_exception_handler(TimeoutError, _database_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected_error)


class RequestContextMiddleware:
    """Gives every request an id (the caller's X-Request-ID if sane), echoes it, and writes one access log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if 0 < len(text) <= 64 and all(c.isalnum() or c in "-_." for c in text):
                return text
    return None


# --- cacheable public responses ------------------------------------------------------------------------------------


def cacheable_response(request: Request, body: bytes, media_type: str, max_age: int) -> Response:
    """A public response shared caches may keep ``max_age`` seconds, with a strong ETag over its bytes; a request
    whose If-None-Match names it gets 304 without the body."""
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"Cache-Control": f"public, max-age={max_age}", "ETag": etag}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type=media_type, headers=headers)


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    # Weak comparison, as RFC 9110 asks for If-None-Match: W/"x" matches "x".
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates
