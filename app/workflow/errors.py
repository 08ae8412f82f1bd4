from __future__ import annotations

from app.core.errors import Conflict, InvalidInput, NotFound


class CaseNotFound(NotFound):
    code = "case_not_found"
    message = "未找到该案件"


class NothingToReroute(InvalidInput):
    code = "nothing_to_reroute"
    message = "请指定新的行业领域或承办部门"


class DepartmentRequired(InvalidInput):
    code = "department_required_for_assignment"
    message = "请指定承办部门"


class PrimaryNotOpen(Conflict):
    code = "primary_not_open"
    message = "只能合并到尚未办结的案件"


class IdentityHidden(Conflict):
    code = "identity_hidden_by_reporter"
    message = "举报人选择了匿名，身份不予披露"


class NoIdentityOnFile(NotFound):
    code = "no_identity_on_file"
    message = "该举报没有可披露的身份信息"


class ReferralRequired(InvalidInput):
    code = "referral_required"
    message = "以“不属于本地管辖”不予受理时，须告知举报人应向何处反映"


class HazardLevelRequired(InvalidInput):
    code = "hazard_level_required"
    message = "核查属实或部分属实时，须认定隐患等级（一般或重大）"
