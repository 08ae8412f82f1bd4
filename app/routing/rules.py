"""Choosing the department for a report: the most specific routing rule wins. Pure: no I/O.

A rule names a category and either one jurisdiction or none ("any place"). For a report in jurisdiction path
清远市 > 英德市 > 英城街道, a rule for 英城街道 beats one for 英德市, which beats one for 清远市, which beats
one for any place. Among rules equally specific, the higher priority wins, then the older rule, so the choice
never depends on the order rows come back from the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class RoutingReason(StrEnum):
    RULE_MATCHED = "rule_matched"
    OUTSIDE_ALL_JURISDICTIONS = "outside_all_jurisdictions"
    NO_RULE = "no_rule_for_category_and_place"
    MANUAL = "manual_reroute"
    HANDED_BACK = "handed_back"


@dataclass(frozen=True)
class Rule:
    id: uuid.UUID
    category_code: str
    jurisdiction_adcode: str | None
    department_id: uuid.UUID
    department_name: str
    priority: int
    created_at: datetime


@dataclass(frozen=True)
class PlaceStep:
    adcode: str
    name: str
    level: str


@dataclass(frozen=True)
class RuleChoice:
    rule: Rule | None
    reason: RoutingReason
    explanation: str


def choose_rule(rules: Sequence[Rule], category_code: str, category_name: str, path: Sequence[PlaceStep]) -> RuleChoice:
    if not path:
        return RuleChoice(
            None, RoutingReason.OUTSIDE_ALL_JURISDICTIONS, "举报位置不在任何已配置的行政区域内，转安委办人工分派"
        )
    depth = {step.adcode: index + 1 for index, step in enumerate(path)}
    candidates = [
        r
        for r in rules
        if r.category_code == category_code and (r.jurisdiction_adcode is None or r.jurisdiction_adcode in depth)
    ]
    place = " > ".join(step.name for step in path)
    if not candidates:
        return RuleChoice(
            None, RoutingReason.NO_RULE, f"“{category_name}”在 {place} 没有配置承办部门，转安委办人工分派"
        )
    best = min(
        candidates, key=lambda r: (-depth.get(r.jurisdiction_adcode or "", 0), -r.priority, r.created_at, str(r.id))
    )
    scope = next((s.name for s in path if s.adcode == best.jurisdiction_adcode), "任意地区")
    return RuleChoice(
        best, RoutingReason.RULE_MATCHED, f"按“{category_name} @ {scope}”规则转 {best.department_name}（位置：{place}）"
    )
