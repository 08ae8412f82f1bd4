"""Domain errors.

Every error the API can answer with is a subclass of :class:`DomainError` that carries its HTTP status, a stable
machine code and a Chinese message for the person in front of the mini-program or the staff console. One handler
(in ``app.core.http``) turns them into the single JSON error shape. Services raise these, never HTTPException.
This module imports nothing from FastAPI so pure modules can raise domain errors too.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    message: ClassVar[str] = "请求有误"

    def __init__(self, message: str | None = None, *, field: str | None = None, **details: Any) -> None:
        self.detail_message = message or self.message
        self.field = field
        self.details = details
        super().__init__(self.detail_message)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.detail_message}
        if self.field:
            error["field"] = self.field
        if self.details:
            error["details"] = self.details
        return {"error": error}


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = "未找到该资源"


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"
    message = "请先登录"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    message = "无权执行此操作"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    message = "操作与当前状态冲突"


class InvalidInput(DomainError):
    status = 422
    code = "invalid_input"
    message = "输入不合法"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    message = "请求内容过大"


class ServiceUnavailable(DomainError):
    status = 503
    code = "service_unavailable"
    message = "服务暂时不可用，请稍后重试"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    message = "数据库暂时不可用，请稍后重试"


def all_error_classes() -> list[type[DomainError]]:
    """Every DomainError subclass that has been imported, for the test that each has a status and code."""
    seen: list[type[DomainError]] = []
    stack: list[type[DomainError]] = [DomainError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen
