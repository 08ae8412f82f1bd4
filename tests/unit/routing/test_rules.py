from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.routing.rules import PlaceStep, RoutingReason, Rule, choose_rule

PATH = [
    PlaceStep("441800", "清远市", "city"),
    PlaceStep("441881", "英德市", "district"),
    PlaceStep("441881001", "英城街道", "township"),
]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rule(category: str, place: str | None, name: str, priority: int = 0, age: int = 0) -> Rule:
    return Rule(uuid.uuid4(), category, place, uuid.uuid4(), name, priority, T0 - timedelta(days=age))


def test_the_most_specific_place_wins() -> None:
    rules = [
        rule("gas", None, "省住建厅"),
        rule("gas", "441800", "清远市住建局"),
        rule("gas", "441881", "英德市住建局"),
        rule("gas", "441881001", "英城街道办"),
    ]
    choice = choose_rule(rules, "gas", "燃气", PATH)
    assert choice.reason is RoutingReason.RULE_MATCHED
    assert choice.rule is not None and choice.rule.department_name == "英城街道办"
    assert "英城街道" in choice.explanation


def test_priority_then_age_break_ties() -> None:
    low, high = rule("gas", "441881", "甲", priority=0), rule("gas", "441881", "乙", priority=5)
    assert choose_rule([low, high], "gas", "燃气", PATH).rule == high
    older, newer = rule("gas", "441881", "老", age=10), rule("gas", "441881", "新", age=1)
    assert choose_rule([newer, older], "gas", "燃气", PATH).rule == older


def test_rules_for_other_places_and_categories_do_not_apply() -> None:
    rules = [rule("gas", "441802", "清城区住建局"), rule("fire_safety", "441881", "消防大队")]
    choice = choose_rule(rules, "gas", "燃气", PATH)
    assert choice.rule is None
    assert choice.reason is RoutingReason.NO_RULE
    assert "燃气" in choice.explanation


def test_outside_every_jurisdiction_goes_to_triage() -> None:
    choice = choose_rule([rule("gas", None, "任意")], "gas", "燃气", [])
    assert choice.rule is None and choice.reason is RoutingReason.OUTSIDE_ALL_JURISDICTIONS


@given(st.permutations(list(range(4))))
def test_the_choice_does_not_depend_on_rule_order(order: list[int]) -> None:
    rules = [
        rule("gas", None, "a"),
        rule("gas", "441800", "b"),
        rule("gas", "441881", "c", priority=1),
        rule("gas", "441881", "d", priority=2),
    ]
    assert choose_rule([rules[i] for i in order], "gas", "燃气", PATH).rule == rules[3]
