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
    MANAGE_REFERENCE_DATA = "manage_reference_data"
    PREVIEW_ROUTING = "preview_routing"
    VIEW_ALL_REPORTS = "view_all_reports"
    VIEW_DEPARTMENT_REPORTS = "view_department_reports"
    VIEW_TRIAGE = "view_triage"
    REROUTE = "reroute"
    HAND_BACK = "hand_back"
    REVEAL_IDENTITY = "reveal_identity"
    VIEW_AUDIT_LOG = "view_audit_log"
    VIEW_REWARDS = "view_rewards"
    VIEW_DEPARTMENT_REWARDS = "view_department_rewards"
    REVEAL_PAYEE = "reveal_payee"
    MANAGE_REWARD_POLICIES = "manage_reward_policies"
    VIEW_STATISTICS = "view_statistics"
    PUBLISH_CASES = "publish_cases"
    MANAGE_PARTNERS = "manage_partners"


_DEPARTMENT_WORK = {Permission.UPLOAD_EVIDENCE, Permission.VIEW_DEPARTMENT_REPORTS, Permission.HAND_BACK}

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.HOTLINE_OPERATOR: frozenset({Permission.FILE_REPORT_FOR_CALLER, Permission.UPLOAD_EVIDENCE}),
    Role.DISPATCHER: frozenset(
        {
            Permission.FILE_REPORT_FOR_CALLER,
            Permission.UPLOAD_EVIDENCE,
            Permission.VIEW_ALL_REPORTS,
            Permission.VIEW_TRIAGE,
            Permission.REROUTE,
            Permission.PREVIEW_ROUTING,
            Permission.REVEAL_IDENTITY,
            Permission.VIEW_STATISTICS,
            Permission.PUBLISH_CASES,
        }
    ),
    Role.INSPECTOR: frozenset(_DEPARTMENT_WORK),
    Role.DEPARTMENT_HEAD: frozenset(
        _DEPARTMENT_WORK | {Permission.VIEW_DEPARTMENT_REWARDS, Permission.VIEW_STATISTICS}
    ),
    Role.REWARD_AUDITOR: frozenset(
        {Permission.VIEW_ALL_REPORTS, Permission.REVEAL_IDENTITY, Permission.VIEW_REWARDS, Permission.REVEAL_PAYEE}
    ),
    Role.ADMIN: frozenset(
        {
            Permission.MANAGE_STAFF,
            Permission.MANAGE_REFERENCE_DATA,
            Permission.PREVIEW_ROUTING,
            Permission.VIEW_ALL_REPORTS,
            Permission.VIEW_AUDIT_LOG,
            Permission.MANAGE_REWARD_POLICIES,
            Permission.VIEW_STATISTICS,
            Permission.MANAGE_PARTNERS,
        }
    ),
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
