"""What the reporter reads for each state of a case: plain Chinese, no internal detail. Pure.

Kept here, beside the reporter's views, so that intake needs nothing from the workflow package; the workflow's
state machine (``app.workflow.transitions``) checks in its tests that every state has a label.
"""

from __future__ import annotations

REPORTER_LABELS: dict[str, str] = {
    "submitted": "已提交，待受理",
    "accepted": "已受理",
    "assigned": "已转办",
    "verifying": "核查中",
    "verified_true": "整改中",
    "rectifying": "整改中",
    "rectified": "整改中",
    "verified_false": "已办结（经核查不属实）",
    "closed": "已办结",
    "rejected": "不予受理",
    "merged": "已合并办理",
}


def reporter_label(state: str, department_name: str | None = None) -> str:
    if state in ("submitted", "assigned") and department_name:
        return f"已转至 {department_name} 核查" if state == "submitted" else f"已转办 {department_name}"
    return REPORTER_LABELS.get(state, "办理中")
