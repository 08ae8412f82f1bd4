from __future__ import annotations

from app.core.errors import Conflict, InvalidInput, NotFound


class CaseNotFound(NotFound):
    code = "case_not_found"
    message = "未找到该案件"


class NothingToReroute(InvalidInput):
    code = "nothing_to_reroute"
    message = "请指定新的行业领域或承办部门"


class NotYourDepartment(Conflict):
    code = "not_your_department"
    message = "该案件当前不由本部门承办，无法退回"
