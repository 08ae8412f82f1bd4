"""Staff roles and what each may do: the permission table, pure data."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    HOTLINE_OPERATOR = "hotline_operator"
    DISPATCHER = "dispatcher"
    INSPECTOR = "inspector"
    DEPARTMENT_HEAD = "department_head"
    REWARD_AUDITOR = "reward_auditor"
    ADMIN = "admin"


class Permission(StrEnum):
    FILE_REPORT_FOR_CALLER = "file_report_for_caller"
    UPLOAD_EVIDENCE = "upload_evidence"
    MANAGE_STAFF = "manage_staff"


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.HOTLINE_OPERATOR: frozenset({Permission.FILE_REPORT_FOR_CALLER, Permission.UPLOAD_EVIDENCE}),
    Role.DISPATCHER: frozenset({Permission.FILE_REPORT_FOR_CALLER, Permission.UPLOAD_EVIDENCE}),
    Role.INSPECTOR: frozenset({Permission.UPLOAD_EVIDENCE}),
    Role.DEPARTMENT_HEAD: frozenset({Permission.UPLOAD_EVIDENCE}),
    Role.REWARD_AUDITOR: frozenset(),
    Role.ADMIN: frozenset({Permission.MANAGE_STAFF}),
}

# Roles whose members act for one department only.
DEPARTMENT_ROLES = frozenset({Role.INSPECTOR, Role.DEPARTMENT_HEAD})

ROLE_NAMES = {
    Role.HOTLINE_OPERATOR: "12350 接线员",
    Role.DISPATCHER: "安委办受理员",
    Role.INSPECTOR: "部门核查员",
    Role.DEPARTMENT_HEAD: "部门负责人",
    Role.REWARD_AUDITOR: "奖励审核员",
    Role.ADMIN: "管理员",
}


def has_permission(role: Role, permission: Permission) -> bool:
    return permission in PERMISSIONS[role]
