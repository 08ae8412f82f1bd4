from __future__ import annotations

from app.core.errors import InvalidInput


class UnknownCategory(InvalidInput):
    code = "unknown_category"
    message = "行业领域不存在"


class UnknownDepartment(InvalidInput):
    code = "unknown_department"
    message = "部门不存在或已停用"
