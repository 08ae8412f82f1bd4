from __future__ import annotations

from app.core.errors import Conflict, InvalidInput, NotFound


class UnknownJurisdiction(InvalidInput):
    code = "unknown_jurisdiction"
    message = "行政区域不存在"


class MissingParentJurisdiction(InvalidInput):
    code = "missing_parent_jurisdiction"
    message = "上级行政区域不存在：请先导入上级区域"


class DuplicateCode(Conflict):
    code = "duplicate_code"
    message = "编码已存在"


class RuleNotFound(NotFound):
    code = "routing_rule_not_found"
    message = "路由规则不存在"


class ReferenceChangedConcurrently(Conflict):
    code = "reference_changed_concurrently"
    message = "参考数据正被他人修改，请重试"
