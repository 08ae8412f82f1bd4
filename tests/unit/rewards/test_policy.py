"""Reward policies and their evaluation, without a database. Every expected amount is worked out by hand in the
comment next to it, in fen (1 元 = 100 分). Policies named FICTIONAL are made up for these tests only."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.errors import DomainError
from app.rewards import policy as policy_module
from app.rewards.policy import (
    AccidentLevel,
    AmbiguousRewardPolicy,
    AnonymousPolicy,
    CapOverrideNotAllowed,
    CapOverrideReasonRequired,
    CapPeriod,
    CaseKind,
    DiscretionaryAmountNotApplicable,
    DiscretionaryAmountOutOfRange,
    DiscretionaryAmountRequired,
    EmployeeUplift,
    Exclusion,
    FixedRule,
    InvalidRewardFacts,
    InvalidRewardPolicy,
    LineCode,
    NoRewardPolicy,
    PaidInPeriodRequired,
    PenaltyRequired,
    PercentOfPenaltyRule,
    PerConcealedDeathRule,
    RangeRule,
    ReporterCap,
    RewardDecision,
    RewardFacts,
    RewardPolicy,
    Stage,
    applicable,
    apply_rate,
    builtin_policies,
    evaluate,
    national_2018,
    parse_policy,
    policy_to_data,
    shandong_2019,
    shenzhen,
)

GENERAL, MAJOR, ILLEGAL, CONCEALED = (
    CaseKind.GENERAL_HAZARD,
    CaseKind.MAJOR_HAZARD,
    CaseKind.ILLEGAL_PRODUCTION,
    CaseKind.CONCEALED_ACCIDENT,
)
VERIFICATION, PENALTY = Stage.VERIFICATION, Stage.PENALTY
YUAN = 100
NATIONAL, SHANDONG, SHENZHEN = national_2018(), shandong_2019(), shenzhen()
PER_DEATH = {
    AccidentLevel.GENERAL: 30_000 * YUAN,
    AccidentLevel.LARGER: 40_000 * YUAN,
    AccidentLevel.MAJOR: 50_000 * YUAN,
    AccidentLevel.ESPECIALLY_MAJOR: 60_000 * YUAN,
}


def facts(**overrides: Any) -> RewardFacts:
    values: dict[str, Any] = {
        "case_kind": MAJOR,
        "verification": "true",
        "stage": PENALTY,
        "first_reporter": True,
        "anonymous": False,
    }
    values.update(overrides)
    return RewardFacts(**values)


def fictional(**overrides: Any) -> RewardPolicy:
    """FICTIONAL: a policy with a wide range rule, so a test can choose the base amount as the department's pick."""
    values: dict[str, Any] = {
        "code": "fictional",
        "name": "测试用虚构政策",
        "version": 1,
        "effective_from": date(2020, 1, 1),
        "rules": {
            GENERAL: RangeRule(min_fen=0, max_fen=1_000_000 * YUAN),
            MAJOR: PercentOfPenaltyRule(rate_bp=1500, min_fen=3_000 * YUAN, max_fen=300_000 * YUAN),
        },
    }
    values.update(overrides)
    return RewardPolicy(**values)


def pick(amount_fen: int, **overrides: Any) -> RewardFacts:
    return facts(case_kind=GENERAL, discretionary_fen=amount_fen, **overrides)


def codes(decision: RewardDecision) -> list[LineCode]:
    return [line.code for line in decision.lines]


def assert_well_formed(decision: RewardDecision) -> None:
    assert isinstance(decision.amount_fen, int) and decision.amount_fen >= 0
    assert decision.lines[0].code is LineCode.POLICY
    assert decision.lines[-1].code is LineCode.TOTAL
    assert decision.lines[-1].running_fen == decision.amount_fen
    assert all(isinstance(line.running_fen, int) and line.running_fen >= 0 for line in decision.lines)
    if not decision.eligible:
        assert decision.amount_fen == 0 and decision.reasons


# --- the national 2018 formula ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("penalty_fen", "expected_fen", "steps"),
    [
        # 10,000 元 = 1,000,000 分 × 15% = 150,000 分 (1,500 元) < 3,000 元 → raised to 300,000 分
        (1_000_000, 300_000, [LineCode.PERCENT, LineCode.RAISED_TO_MINIMUM]),
        # 20,000 元 × 15% = 3,000 元 exactly the minimum: nothing to raise
        (2_000_000, 300_000, [LineCode.PERCENT]),
        # 100,000 元 × 15% = 15,000 元
        (10_000_000, 1_500_000, [LineCode.PERCENT]),
        # 2,000,000 元 × 15% = 300,000 元 exactly the maximum
        (200_000_000, 30_000_000, [LineCode.PERCENT]),
        # 5,000,000 元 = 500,000,000 分 × 15% = 75,000,000 分 (750,000 元) > 300,000 元 → 30,000,000 分
        (500_000_000, 30_000_000, [LineCode.PERCENT, LineCode.LOWERED_TO_MAXIMUM]),
        # 3,333,333 分 × 15% = 499,999.95 分 → half up → 500,000 分 (above the minimum, so the rounding shows)
        (3_333_333, 500_000, [LineCode.PERCENT]),
        # 10,000,030 分 × 15% = 1,500,004.5 分 → half up 1,500,005 (banker's rounding would give 1,500,004)
        (10_000_030, 1_500_005, [LineCode.PERCENT]),
        # a penalty decision of 0 (verified, not fined): 0 × 15% = 0 → the literal formula's minimum, 3,000 元
        (0, 300_000, [LineCode.PERCENT, LineCode.RAISED_TO_MINIMUM]),
    ],
)
@pytest.mark.parametrize("kind", [MAJOR, ILLEGAL])
def test_national_percent_of_penalty(kind: CaseKind, penalty_fen: int, expected_fen: int, steps: list) -> None:
    decision = evaluate(NATIONAL, facts(case_kind=kind, penalty_fen=penalty_fen))
    assert decision.eligible and decision.amount_fen == expected_fen == decision.total_fen
    assert codes(decision) == [LineCode.POLICY, *steps, LineCode.TOTAL]
    assert_well_formed(decision)


def test_national_explanation_reads_as_an_auditor_would_write_it() -> None:
    lines = evaluate(NATIONAL, facts(penalty_fen=1_000_000)).lines
    assert [line.text for line in lines[1:]] == [
        "按处罚金额 1,000,000 分 × 15% = 150,000 分",
        "低于最低 3,000 元，按 300,000 分",
        "应发奖励 300,000 分（3,000 元）",
    ]
    assert [line.running_fen for line in lines[1:]] == [150_000, 300_000, 300_000]
    assert lines[0].text.startswith("适用政策：安全生产领域举报奖励办法（安监总财〔2018〕19号）")
    rounded = evaluate(NATIONAL, facts(penalty_fen=3_333_333)).lines[1]
    assert rounded.text == "按处罚金额 3,333,333 分 × 15% = 499,999.95 分，四舍五入到分为 500,000 分"
    capped = evaluate(NATIONAL, facts(penalty_fen=500_000_000)).lines[2]
    assert capped.text == "高于最高 300,000 元，按 30,000,000 分"


@pytest.mark.parametrize(
    ("amount_fen", "rate_bp", "expected"),
    [
        (333_333, 1500, 50_000),  # 49,999.95 → 50,000 (half up; the .95 rounds up under any rule)
        (100, 1250, 13),  # 12.5 → 13 (half up; banker's would give 12)
        (300, 1250, 38),  # 37.5 → 38 (half up and banker's agree)
        (101, 1500, 15),  # 15.15 → 15
        (0, 1500, 0),
        (1, 5000, 1),  # 0.5 → 1
        (10**12, 10_000, 10**12),
    ],
)
def test_rounding_to_the_fen_is_half_up(amount_fen: int, rate_bp: int, expected: int) -> None:
    assert apply_rate(amount_fen, rate_bp) == expected


def test_rounding_applies_before_the_minimum() -> None:
    # FICTIONAL minimum 0: 333,333 分 × 15% = 49,999.95 → 50,000 分
    policy = fictional(rules={MAJOR: PercentOfPenaltyRule(rate_bp=1500)})
    decision = evaluate(policy, facts(penalty_fen=333_333))
    assert decision.amount_fen == 50_000
    assert decision.lines[1].text == "按处罚金额 333,333 分 × 15% = 49,999.95 分，四舍五入到分为 50,000 分"


@pytest.mark.parametrize(
    ("level", "deaths", "expected_fen", "capped"),
    [
        (AccidentLevel.GENERAL, 1, 3_000_000, False),  # 1 × 30,000 元
        (AccidentLevel.GENERAL, 2, 6_000_000, False),  # 2 × 30,000 元 = 60,000 元
        (AccidentLevel.LARGER, 3, 12_000_000, False),  # 3 × 40,000 元 = 120,000 元
        (AccidentLevel.MAJOR, 5, 25_000_000, False),  # 5 × 50,000 元 = 250,000 元
        (AccidentLevel.ESPECIALLY_MAJOR, 5, 30_000_000, False),  # 5 × 60,000 元 = 300,000 元, exactly the cap
        (AccidentLevel.ESPECIALLY_MAJOR, 6, 30_000_000, True),  # 360,000 元 → cap 300,000 元
        (AccidentLevel.GENERAL, 10, 30_000_000, False),  # 10 × 30,000 元 = 300,000 元
        (AccidentLevel.GENERAL, 11, 30_000_000, True),  # 330,000 元 → 300,000 元
        (AccidentLevel.LARGER, 100, 30_000_000, True),  # 4,000,000 元 → 300,000 元
    ],
)
def test_national_concealed_accident_per_death_with_cap(
    level: AccidentLevel, deaths: int, expected_fen: int, capped: bool
) -> None:
    decision = evaluate(NATIONAL, facts(case_kind=CONCEALED, concealed_deaths=deaths, accident_level=level))
    assert decision.eligible and decision.amount_fen == expected_fen
    assert (LineCode.LOWERED_TO_MAXIMUM in codes(decision)) is capped
    assert decision.lines[1].running_fen == deaths * PER_DEATH[level]
    assert_well_formed(decision)


def test_concealed_accident_without_confirmed_deaths_is_eligible_but_zero() -> None:
    decision = evaluate(NATIONAL, facts(case_kind=CONCEALED, concealed_deaths=0))
    assert decision.eligible and decision.amount_fen == 0
    assert codes(decision) == [LineCode.POLICY, LineCode.PER_DEATH, LineCode.TOTAL]


def test_national_rules_do_not_cover_general_hazards() -> None:
    decision = evaluate(NATIONAL, facts(case_kind=GENERAL, stage=VERIFICATION))
    assert not decision.eligible and decision.amount_fen == 0
    assert decision.reasons == (LineCode.CASE_KIND_NOT_COVERED,)
    assert "未规定一般事故隐患举报的奖励" in decision.text


def test_national_policy_data() -> None:
    assert NATIONAL.jurisdiction_scope is None and NATIONAL.effective_from == date(2018, 1, 4)
    assert NATIONAL.anonymous is AnonymousPolicy.NO_REWARD and NATIONAL.claim_window_days == 60
    assert NATIONAL.exclusions == frozenset(Exclusion) and not NATIONAL.two_stage
    assert set(NATIONAL.rules) == {MAJOR, ILLEGAL, CONCEALED}
    assert any("isofans.com" in source for source in NATIONAL.sources)


# --- eligibility -----------------------------------------------------------------------------------------------

CLAIM_BY_CODE = fictional(anonymous=AnonymousPolicy.CLAIM_BY_CODE)


@pytest.mark.parametrize(
    ("policy", "overrides", "reasons"),
    [
        (NATIONAL, {"verification": "false"}, [LineCode.VERIFICATION_FALSE]),
        (NATIONAL, {"first_reporter": False}, [LineCode.NOT_FIRST_REPORTER]),
        (NATIONAL, {"is_regulator_staff_or_relative": True}, [LineCode.REGULATOR_STAFF]),
        (NATIONAL, {"excluded": True, "excluded_reason": "企业安全管理人员举报本职事项"}, [LineCode.EXCLUDED]),
        (NATIONAL, {"anonymous": True}, [LineCode.ANONYMOUS_NOT_REWARDED]),
        # claim_by_code is no use under a no_reward policy
        (NATIONAL, {"anonymous": True, "claim_by_code_possible": True}, [LineCode.ANONYMOUS_NOT_REWARDED]),
        (CLAIM_BY_CODE, {"anonymous": True}, [LineCode.ANONYMOUS_WITHOUT_CODE]),
        # every reason that applies is listed, in a fixed order
        (
            NATIONAL,
            {
                "verification": "false",
                "first_reporter": False,
                "anonymous": True,
                "is_regulator_staff_or_relative": True,
            },
            [
                LineCode.VERIFICATION_FALSE,
                LineCode.NOT_FIRST_REPORTER,
                LineCode.REGULATOR_STAFF,
                LineCode.ANONYMOUS_NOT_REWARDED,
            ],
        ),
    ],
)
def test_ineligible_reporters_get_zero_with_the_reasons(policy: RewardPolicy, overrides: dict, reasons: list) -> None:
    decision = evaluate(policy, facts(penalty_fen=10_000_000, **overrides))
    assert not decision.eligible and decision.amount_fen == 0 and decision.total_fen == 0
    assert list(decision.reasons) == reasons
    assert decision.lines[-1].text == "不予奖励：0 分"
    assert_well_formed(decision)


def test_the_flagged_exclusion_reason_is_shown() -> None:
    decision = evaluate(NATIONAL, facts(penalty_fen=0, excluded=True, excluded_reason="第三方机构举报其服务对象"))
    assert "举报人属于本政策不予奖励的情形（第三方机构举报其服务对象）" in decision.text


@pytest.mark.parametrize(
    ("exclusions", "regulator", "flagged", "eligible"),
    [
        (frozenset(Exclusion), True, False, False),
        (frozenset(Exclusion), False, True, False),
        (frozenset({Exclusion.FLAGGED}), True, False, True),  # FICTIONAL policy that does not exclude staff
        (frozenset({Exclusion.REGULATOR_STAFF_OR_RELATIVE}), False, True, True),
        (frozenset(), True, True, True),
    ],
)
def test_exclusions_are_policy_data(exclusions: frozenset, regulator: bool, flagged: bool, eligible: bool) -> None:
    policy = fictional(exclusions=exclusions)
    decision = evaluate(policy, facts(penalty_fen=0, is_regulator_staff_or_relative=regulator, excluded=flagged))
    assert decision.eligible is eligible
    assert decision.amount_fen == (300_000 if eligible else 0)


def test_anonymous_with_a_query_code_is_rewarded_under_claim_by_code() -> None:
    decision = evaluate(CLAIM_BY_CODE, facts(penalty_fen=10_000_000, anonymous=True, claim_by_code_possible=True))
    assert decision.eligible and decision.amount_fen == 1_500_000  # 100,000 元 × 15%
    assert LineCode.ANONYMOUS_CLAIM_BY_CODE in codes(decision)


def test_partly_true_is_eligible_and_rewarded_on_the_verified_part() -> None:
    # The penalty recorded is for the verified part; no haircut on top: 80,000 元 × 15% = 12,000 元.
    true = evaluate(NATIONAL, facts(penalty_fen=8_000_000))
    partly = evaluate(NATIONAL, facts(penalty_fen=8_000_000, verification="partly_true"))
    assert partly.eligible and partly.amount_fen == true.amount_fen == 1_200_000
    assert LineCode.PARTLY_TRUE in codes(partly) and LineCode.PARTLY_TRUE not in codes(true)


def test_ineligible_reports_need_no_complete_proposal() -> None:
    # A false report under a range rule: no pick needed, no error; the reason is what matters.
    decision = evaluate(SHANDONG, facts(case_kind=GENERAL, verification="false"))
    assert decision.reasons == (LineCode.VERIFICATION_FALSE,)


# --- range mode ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pick_fen", "expected"),
    [
        (50_000, 50_000),  # 500 元, the lower bound
        (200_000, 200_000),  # 2,000 元
        (500_000, 500_000),  # 5,000 元, the upper bound
        (49_999, DiscretionaryAmountOutOfRange),  # 499.99 元
        (500_001, DiscretionaryAmountOutOfRange),  # 5,000.01 元
        (0, DiscretionaryAmountOutOfRange),
        (None, DiscretionaryAmountRequired),
    ],
)
def test_shandong_general_hazard_range_pick_is_checked(pick_fen: int | None, expected: Any) -> None:
    f = facts(case_kind=GENERAL, hazard_level="general", stage=VERIFICATION, discretionary_fen=pick_fen)
    if isinstance(expected, type):
        with pytest.raises(expected) as error:
            evaluate(SHANDONG, f)
        assert error.value.field == "discretionary_fen" and error.value.status == 422
        return
    decision = evaluate(SHANDONG, f)
    assert decision.amount_fen == expected
    assert decision.lines[1].code is LineCode.RANGE
    assert "一般事故隐患奖励 500 元–5,000 元，承办部门酌定" in decision.lines[1].text


def test_a_pick_is_refused_where_the_rule_fixes_the_amount() -> None:
    with pytest.raises(DiscretionaryAmountNotApplicable):
        evaluate(NATIONAL, facts(penalty_fen=0, discretionary_fen=300_000))


# --- local variants --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected_fen"),
    [
        # 100,000 元 × 50% = 50,000 元
        ({"penalty_fen": 10_000_000}, 5_000_000),
        # 5,000 元 × 50% = 2,500 元 < 5,000 元 → 500,000 分
        ({"penalty_fen": 500_000}, 500_000),
        # 2,000,000 元 × 50% = 1,000,000 元 > 500,000 元 → 50,000,000 分
        ({"penalty_fen": 200_000_000}, 50_000_000),
        ({"case_kind": ILLEGAL, "penalty_fen": 10_000_000}, 5_000_000),
        # 瞒报: 特别重大 9 × 60,000 = 540,000 元 → cap 500,000 元
        ({"case_kind": CONCEALED, "concealed_deaths": 9, "accident_level": "especially_major"}, 50_000_000),
        # 较大 3 × 40,000 元 = 120,000 元
        ({"case_kind": CONCEALED, "concealed_deaths": 3, "accident_level": "larger"}, 12_000_000),
        # the fire exclusion covers the hazard rules only, not the concealed-accident paragraph
        (
            {"case_kind": CONCEALED, "concealed_deaths": 1, "accident_level": "general", "category": "fire_safety"},
            3_000_000,
        ),
    ],
)
def test_shandong(overrides: dict, expected_fen: int) -> None:
    decision = evaluate(SHANDONG, facts(**overrides))
    assert decision.eligible and decision.amount_fen == expected_fen
    assert_well_formed(decision)


@pytest.mark.parametrize("kind", [GENERAL, MAJOR, ILLEGAL])
def test_shandong_hazard_rules_do_not_apply_to_fire_hazards(kind: CaseKind) -> None:
    decision = evaluate(SHANDONG, facts(case_kind=kind, category="fire_safety", penalty_fen=1, discretionary_fen=None))
    assert decision.reasons == (LineCode.CATEGORY_NOT_COVERED,)


@pytest.mark.parametrize(
    ("overrides", "expected_fen", "last_step"),
    [
        ({"case_kind": GENERAL, "stage": VERIFICATION}, 50_000, LineCode.FIXED),  # 500 元 per report
        # 10,000 元 × 15% = 1,500 元 → minimum 3,000 元
        ({"penalty_fen": 1_000_000}, 300_000, LineCode.RAISED_TO_MINIMUM),
        # 3,000,000 元 × 15% = 450,000 元 → per-report cap 300,000 元
        ({"penalty_fen": 300_000_000}, 30_000_000, LineCode.PER_REPORT_CAP),
        # the same, with the override 深圳 allows for 群死群伤 hazards: 450,000 元
        (
            {"penalty_fen": 300_000_000, "cap_override": True, "cap_override_reason": "举报并消除群死群伤重大事故隐患"},
            45_000_000,
            LineCode.CAP_OVERRIDDEN,
        ),
        # 瞒报 特别重大 7 × 60,000 元 = 420,000 元 → per-report cap 300,000 元
        (
            {"case_kind": CONCEALED, "concealed_deaths": 7, "accident_level": "especially_major"},
            30_000_000,
            LineCode.PER_REPORT_CAP,
        ),
    ],
)
def test_shenzhen(overrides: dict, expected_fen: int, last_step: LineCode) -> None:
    decision = evaluate(SHENZHEN, facts(**overrides))
    assert decision.eligible and decision.amount_fen == expected_fen
    assert decision.lines[-2].code is last_step
    assert_well_formed(decision)


def test_shenzhen_pays_no_anonymous_reporter() -> None:
    decision = evaluate(SHENZHEN, facts(case_kind=GENERAL, anonymous=True))
    assert decision.reasons == (LineCode.ANONYMOUS_NOT_REWARDED,)


# --- per-report cap and its override ---------------------------------------------------------------------------

CAPPED = fictional(per_report_cap_fen=100_000 * YUAN, cap_override_allowed=True)  # FICTIONAL: cap 100,000 元
REASON = {"cap_override": True, "cap_override_reason": "举报并消除群死群伤重大事故隐患"}


@pytest.mark.parametrize(
    ("pick_fen", "overrides", "expected_fen", "step"),
    [
        (5_000_000, {}, 5_000_000, None),  # 50,000 元 under the cap
        (10_000_000, {}, 10_000_000, None),  # exactly the cap
        (15_000_000, {}, 10_000_000, LineCode.PER_REPORT_CAP),  # 150,000 元 → 100,000 元
        (15_000_000, REASON, 15_000_000, LineCode.CAP_OVERRIDDEN),  # approved: 150,000 元
        (5_000_000, REASON, 5_000_000, LineCode.CAP_OVERRIDE_UNUSED),  # nothing to override
    ],
)
def test_per_report_cap_and_override(pick_fen: int, overrides: dict, expected_fen: int, step: LineCode | None) -> None:
    decision = evaluate(CAPPED, pick(pick_fen, **overrides))
    assert decision.amount_fen == expected_fen
    if step is None:
        assert codes(decision) == [LineCode.POLICY, LineCode.RANGE, LineCode.TOTAL]
    else:
        assert decision.lines[-2].code is step
    assert_well_formed(decision)


def test_override_text_names_the_reason() -> None:
    decision = evaluate(CAPPED, pick(15_000_000, **REASON))
    assert decision.lines[-2].text == (
        "超过单笔奖励上限 100,000 元，经批准突破（理由：举报并消除群死群伤重大事故隐患），按 15,000,000 分"
    )


@pytest.mark.parametrize("reason", ["", "   "])
def test_override_without_a_reason_is_refused(reason: str) -> None:
    with pytest.raises(CapOverrideReasonRequired) as error:
        pick(15_000_000, cap_override=True, cap_override_reason=reason)
    assert error.value.field == "cap_override_reason" and error.value.status == 422


def test_override_is_refused_where_the_policy_does_not_allow_it() -> None:
    with pytest.raises(CapOverrideNotAllowed):
        evaluate(replace(CAPPED, cap_override_allowed=False), pick(15_000_000, **REASON))
    with pytest.raises(CapOverrideNotAllowed):
        evaluate(NATIONAL, facts(penalty_fen=500_000_000, **REASON))


# --- employee uplift -------------------------------------------------------------------------------------------

# FICTIONAL, shaped like 河南 2025: +15%, at least 1,000 元 more, and (made up) at most 50,000 元 more.
UPLIFT = fictional(
    employee_uplift=EmployeeUplift(rate_bp=1500, min_uplift_fen=1_000 * YUAN, max_uplift_fen=50_000 * YUAN)
)


@pytest.mark.parametrize(
    ("base_fen", "employee", "expected_fen"),
    [
        (300_000, True, 400_000),  # 3,000 元 × 15% = 450 元 < 1,000 元 → +1,000 元 = 4,000 元
        (666_667, True, 766_667),  # 666,667 × 15% = 100,000.05 → 100,000 = the minimum → 766,667
        (2_000_000, True, 2_300_000),  # 20,000 元 × 15% = 3,000 元 → 23,000 元
        (33_333_334, True, 38_333_334),  # × 15% = 5,000,000.1 → 5,000,000 = the uplift cap → 38,333,334
        (40_000_000, True, 45_000_000),  # 400,000 元 × 15% = 60,000 元 > 50,000 元 → +50,000 元
        (2_000_000, False, 2_000_000),  # not an employee of the unit: no uplift
        (0, True, 0),  # nothing to uplift
    ],
)
def test_employee_uplift(base_fen: int, employee: bool, expected_fen: int) -> None:
    decision = evaluate(UPLIFT, pick(base_fen, is_employee_of_unit=employee))
    assert decision.amount_fen == expected_fen
    assert (LineCode.EMPLOYEE_UPLIFT in codes(decision)) is (employee and base_fen > 0)
    assert_well_formed(decision)


def test_employee_uplift_text() -> None:
    policy = fictional(employee_uplift=EmployeeUplift(rate_bp=1500))
    # 20,000 元 × 15% = 3,000 元; + 15% = 450 元 → 345,000 分
    decision = evaluate(policy, facts(penalty_fen=2_000_000, is_employee_of_unit=True))
    assert decision.lines[2].text == "从业人员举报本单位上浮 15%：+45,000 分"
    assert decision.amount_fen == 345_000
    raised = evaluate(UPLIFT, pick(300_000, is_employee_of_unit=True)).lines[2].text
    assert raised == "从业人员举报本单位上浮 15% 45,000 分，低于最低上浮 1,000 元，按：+100,000 分"
    capped = evaluate(UPLIFT, pick(40_000_000, is_employee_of_unit=True)).lines[2].text
    assert capped == "从业人员举报本单位上浮 15% 6,000,000 分，高于上浮上限 50,000 元，按：+5,000,000 分"


def test_the_per_report_cap_applies_after_the_uplift() -> None:
    policy = replace(UPLIFT, per_report_cap_fen=100_000 * YUAN)
    # 90,000 元 + 15% (13,500 元) = 103,500 元 → cap 100,000 元
    decision = evaluate(policy, pick(9_000_000, is_employee_of_unit=True))
    assert decision.amount_fen == 10_000_000
    assert codes(decision)[-3:] == [LineCode.EMPLOYEE_UPLIFT, LineCode.PER_REPORT_CAP, LineCode.TOTAL]


# --- per-reporter caps per period ------------------------------------------------------------------------------

# FICTIONAL, shaped like 深圳龙华: 一般隐患 500 元 per report, at most 1,000 元 a month per reporter for that kind;
# plus (made up) at most 800 元 a year for reports in the gas category.
MONTH_KEY, GAS_KEY = "month:general_hazard:*", "year:*:gas"
PERIOD_CAPPED = fictional(
    rules={GENERAL: FixedRule(amount_fen=500 * YUAN), MAJOR: PercentOfPenaltyRule(rate_bp=1500)},
    reporter_caps=(
        ReporterCap(period=CapPeriod.MONTH, limit_fen=1_000 * YUAN, case_kind=GENERAL),
        ReporterCap(period="year", limit_fen=800 * YUAN, category="gas"),
    ),
)


@pytest.mark.parametrize(
    ("paid_this_month", "expected_fen"),
    [
        (0, 50_000),  # nothing yet: 500 元
        (50_000, 50_000),  # 500 元 paid, 500 元 left: exactly fits
        (60_000, 40_000),  # 600 元 paid, 400 元 left
        (99_999, 1),  # 999.99 元 paid, 1 分 left
        (100_000, 0),  # the cap is reached
        (150_000, 0),  # over the cap already (a correction elsewhere): never below 0
    ],
)
def test_monthly_per_reporter_cap(paid_this_month: int, expected_fen: int) -> None:
    decision = evaluate(
        PERIOD_CAPPED, facts(case_kind=GENERAL, stage=VERIFICATION, paid_in_period_fen={MONTH_KEY: paid_this_month})
    )
    assert decision.eligible and decision.amount_fen == expected_fen
    assert (decision.lines[-2].code is LineCode.REPORTER_CAP) is (expected_fen < 50_000)
    assert_well_formed(decision)


def test_monthly_cap_text() -> None:
    decision = evaluate(
        PERIOD_CAPPED, facts(case_kind=GENERAL, stage=VERIFICATION, paid_in_period_fen={MONTH_KEY: 60_000})
    )
    assert (
        decision.lines[-2].text == "超过本月奖励上限 1,000 元（一般事故隐患，本月已奖励 60,000 分），核减为 40,000 分"
    )


def test_category_cap_applies_only_to_its_category_and_both_caps_apply_together() -> None:
    general_gas = {"case_kind": GENERAL, "stage": VERIFICATION, "category": "gas"}
    # month: 1,000 − 300 = 700 元 left; year (gas): 800 − 600 = 200 元 left → 200 元
    both = evaluate(PERIOD_CAPPED, facts(**general_gas, paid_in_period_fen={MONTH_KEY: 30_000, GAS_KEY: 60_000}))
    assert both.amount_fen == 20_000
    # a fire report counts against the monthly cap only; no gas sum needed
    fire = evaluate(
        PERIOD_CAPPED,
        facts(case_kind=GENERAL, stage=VERIFICATION, category="fire_safety", paid_in_period_fen={MONTH_KEY: 0}),
    )
    assert fire.amount_fen == 50_000
    # a major hazard is under neither cap: 100,000 元 × 15% = 15,000 元
    assert evaluate(PERIOD_CAPPED, facts(penalty_fen=10_000_000)).amount_fen == 1_500_000
    assert PERIOD_CAPPED.reporter_caps_for(MAJOR, None) == ()
    assert [c.key for c in PERIOD_CAPPED.reporter_caps_for(GENERAL, "gas")] == [MONTH_KEY, GAS_KEY]


def test_a_missing_paid_in_period_sum_is_an_error_not_a_skipped_cap() -> None:
    with pytest.raises(PaidInPeriodRequired) as error:
        evaluate(PERIOD_CAPPED, facts(case_kind=GENERAL, stage=VERIFICATION))
    assert error.value.details == {"key": MONTH_KEY}


@pytest.mark.parametrize(
    ("period", "day", "bounds"),
    [
        ("month", date(2026, 2, 14), (date(2026, 2, 1), date(2026, 2, 28))),
        ("month", date(2024, 2, 29), (date(2024, 2, 1), date(2024, 2, 29))),
        ("month", date(2026, 12, 31), (date(2026, 12, 1), date(2026, 12, 31))),
        ("year", date(2026, 7, 1), (date(2026, 1, 1), date(2026, 12, 31))),
    ],
)
def test_cap_periods(period: str, day: date, bounds: tuple[date, date]) -> None:
    assert ReporterCap(period=period, limit_fen=1).period_of(day) == bounds


# --- two-stage payment -----------------------------------------------------------------------------------------

# FICTIONAL, shaped like 龙岩 (核实奖励 + 追加奖励): 40% at verification, the rest after the penalty decision.
TWO_STAGE = fictional(
    rules={GENERAL: FixedRule(amount_fen=333_333), MAJOR: PercentOfPenaltyRule(rate_bp=1500, min_fen=3_000 * YUAN)},
    verification_share_bp=4000,
)


@pytest.mark.parametrize(
    ("overrides", "total_fen", "first_fen"),
    [
        # fixed 333,333 分 × 40% = 133,333.2 → 133,333; the rest 200,000; together 333,333
        ({"case_kind": GENERAL}, 333_333, 133_333),
        # penalty known at verification: 100,000 元 × 15% = 15,000 元; 40% = 6,000 元; rest 9,000 元
        ({"penalty_fen": 10_000_000}, 1_500_000, 600_000),
        # 1,234,567 × 15% = 185,185.05 → 185,185 < 300,000 → 300,000; 40% = 120,000; rest 180,000
        ({"penalty_fen": 1_234_567}, 300_000, 120_000),
    ],
)
def test_two_stages_add_up_to_the_single_stage_amount(overrides: dict, total_fen: int, first_fen: int) -> None:
    first = evaluate(TWO_STAGE, facts(stage=VERIFICATION, **overrides))
    second = evaluate(TWO_STAGE, facts(stage=PENALTY, paid_for_this_report_fen=first.amount_fen, **overrides))
    single = evaluate(replace(TWO_STAGE, verification_share_bp=None), facts(stage=PENALTY, **overrides))
    assert first.amount_fen == first_fen
    assert second.amount_fen == total_fen - first_fen
    assert first.amount_fen + second.amount_fen == single.amount_fen == total_fen
    assert first.total_fen == second.total_fen == total_fen
    assert codes(second)[-3:] == [LineCode.STAGE_SHARE, LineCode.ALREADY_PAID, LineCode.TOTAL]
    assert_well_formed(first)
    assert_well_formed(second)


def test_two_stage_texts() -> None:
    first = evaluate(TWO_STAGE, facts(case_kind=GENERAL, stage=VERIFICATION))
    assert (
        first.lines[-2].text
        == "分两段发放，核实阶段发放 40%：333,333 分 × 40% = 133,333.2 分，四舍五入到分为 133,333 分"
    )
    second = evaluate(TWO_STAGE, facts(case_kind=GENERAL, paid_for_this_report_fen=133_333))
    assert [line.text for line in second.lines[-3:-1]] == [
        "分两段发放，处罚决定后补足全额 333,333 分",
        "扣除本举报已发放 133,333 分：200,000 分",
    ]


def test_a_percent_rule_before_the_penalty_decision_waits() -> None:
    for policy in (TWO_STAGE, NATIONAL):
        decision = evaluate(policy, facts(stage=VERIFICATION, penalty_fen=None))
        assert decision.eligible and decision.awaiting_penalty
        assert decision.amount_fen == 0 and decision.total_fen is None
        assert codes(decision) == [LineCode.POLICY, LineCode.AWAITING_PENALTY, LineCode.TOTAL]
        assert "待处罚决定后核定" in decision.lines[1].text
    # ...then the penalty stage pays it all: 100,000 元 × 15% = 15,000 元, nothing paid before
    later = evaluate(TWO_STAGE, facts(stage=PENALTY, penalty_fen=10_000_000))
    assert later.amount_fen == 1_500_000 and not later.awaiting_penalty


def test_the_penalty_stage_of_a_percent_rule_needs_the_penalty() -> None:
    with pytest.raises(PenaltyRequired):
        evaluate(TWO_STAGE, facts(stage=PENALTY, penalty_fen=None))


@pytest.mark.parametrize(
    ("paid_fen", "expected_fen", "text"),
    [
        (1_499_999, 1, "扣除本举报已发放 1,499,999 分：1 分"),
        (1_500_000, 0, "本举报已发放 1,500,000 分，不少于本阶段应发 1,500,000 分，本次 0 分"),
        (1_500_001, 0, "本举报已发放 1,500,001 分，不少于本阶段应发 1,500,000 分，本次 0 分"),
    ],
)
def test_what_was_paid_for_the_report_is_subtracted_down_to_zero(paid_fen: int, expected_fen: int, text: str) -> None:
    # single stage, 100,000 元 × 15% = 15,000 元 = 1,500,000 分
    decision = evaluate(NATIONAL, facts(penalty_fen=10_000_000, paid_for_this_report_fen=paid_fen))
    assert decision.amount_fen == expected_fen and decision.total_fen == 1_500_000
    assert decision.lines[-2].text == text


def test_the_penalty_stage_never_claws_back() -> None:
    # 6,000 元 were paid at verification on a penalty later reduced to 10,000 元 → total 3,000 元: pay 0, not −3,000
    decision = evaluate(TWO_STAGE, facts(penalty_fen=1_000_000, paid_for_this_report_fen=600_000))
    assert decision.amount_fen == 0 and decision.total_fen == 300_000
    assert decision.lines[-2].text == "本举报已发放 600,000 分，不少于本阶段应发 300,000 分，本次 0 分"


def test_single_stage_pays_once_whichever_stage_knows_the_amount() -> None:
    # fixed rule paid at verification; the penalty stage has nothing left to pay
    first = evaluate(SHENZHEN, facts(case_kind=GENERAL, stage=VERIFICATION))
    later = evaluate(SHENZHEN, facts(case_kind=GENERAL, stage=PENALTY, paid_for_this_report_fen=first.amount_fen))
    assert (first.amount_fen, later.amount_fen) == (50_000, 0)


def test_two_stage_with_a_monthly_cap_caps_what_is_paid_now() -> None:
    policy = replace(TWO_STAGE, reporter_caps=(ReporterCap(period="month", limit_fen=100_000),))
    # total 333,333; verification 40% = 133,333; 50,000 already paid this month → 50,000 left
    decision = evaluate(policy, facts(case_kind=GENERAL, stage=VERIFICATION, paid_in_period_fen={"month:*:*": 50_000}))
    assert decision.amount_fen == 50_000 and decision.total_fen == 333_333


# --- choosing the policy ---------------------------------------------------------------------------------------

# FICTIONAL: a 济南 policy for 2024 only, and a 山东 version 2 from 2026 (amounts made up).
JINAN_2024 = replace(
    SHANDONG,
    code="jinan-2024",
    jurisdiction_scope="370100",
    effective_from=date(2024, 1, 1),
    effective_to=date(2024, 12, 31),
)
SHANDONG_V2 = replace(SHANDONG, version=2, effective_from=date(2026, 1, 1))
POLICIES = (NATIONAL, SHANDONG, SHENZHEN, JINAN_2024, SHANDONG_V2)
JINAN_PATH = ["370000", "370100", "370102"]
QINGDAO_PATH = ["370000", "370200", "370212"]
SHENZHEN_PATH = ["440000", "440300", "440309"]
QINGYUAN_PATH = ["440000", "441800", "441881"]


@pytest.mark.parametrize(
    ("path", "on", "expected"),
    [
        (JINAN_PATH, date(2024, 6, 1), JINAN_2024),  # the city beats the province
        (JINAN_PATH, date(2024, 1, 1), JINAN_2024),  # effective_from is inclusive
        (JINAN_PATH, date(2024, 12, 31), JINAN_2024),  # effective_to is inclusive
        (JINAN_PATH, date(2025, 1, 1), SHANDONG),  # the city's policy has ended: the province again
        (QINGDAO_PATH, date(2024, 6, 1), SHANDONG),  # 济南's policy is not 青岛's
        (JINAN_PATH, date(2019, 5, 31), NATIONAL),  # before 山东's: national
        (JINAN_PATH, date(2019, 6, 1), SHANDONG),
        (JINAN_PATH, date(2026, 1, 1), SHANDONG_V2),  # a newer version supersedes without an end date on the old
        (SHENZHEN_PATH, date(2025, 1, 11), SHENZHEN),
        (SHENZHEN_PATH, date(2025, 1, 10), NATIONAL),
        (QINGYUAN_PATH, date(2025, 6, 1), NATIONAL),  # 广东 has no policy loaded: national
        ([], date(2025, 6, 1), NATIONAL),  # outside every jurisdiction
        (["370102"], date(2024, 6, 1), NATIONAL),  # a path without its ancestors matches only what it names
    ],
)
def test_applicable_policy(path: list[str], on: date, expected: RewardPolicy) -> None:
    assert applicable(POLICIES, path, on) == expected
    assert applicable(reversed(POLICIES), path, on) == expected  # order of the rows does not matter


@pytest.mark.parametrize(
    ("policies", "path", "on"),
    [
        (POLICIES, JINAN_PATH, date(2018, 1, 3)),  # before the national rules
        ((), JINAN_PATH, date(2025, 1, 1)),
        ((SHENZHEN,), JINAN_PATH, date(2025, 6, 1)),  # only another place's policy
    ],
)
def test_no_applicable_policy(policies: tuple, path: list[str], on: date) -> None:
    with pytest.raises(NoRewardPolicy) as error:
        applicable(policies, path, on)
    assert error.value.status == 404 and error.value.code == "no_reward_policy"
    assert error.value.details["on"] == on.isoformat()


def test_among_equally_specific_policies_the_later_start_wins_then_the_higher_version() -> None:
    on = date(2024, 6, 1)
    # FICTIONAL: a new 山东 document from 2024 (version 1 of its own code) beats version 3 of the 2019 one
    newer_document = replace(SHANDONG, code="shandong-2024", effective_from=date(2024, 1, 1))
    old_version_3 = replace(SHANDONG, version=3)
    assert applicable((old_version_3, newer_document), JINAN_PATH, on) == newer_document
    # a corrected re-issue with the same start date: the higher version wins
    corrected = replace(SHANDONG, version=2, name="山东省安全生产举报奖励办法（2019，更正）")
    assert applicable((SHANDONG, corrected), JINAN_PATH, on) == corrected


def test_two_equally_specific_policies_are_refused_not_guessed() -> None:
    twin = replace(SHANDONG, code="shandong-copy")
    with pytest.raises(AmbiguousRewardPolicy) as error:
        applicable((NATIONAL, SHANDONG, twin), JINAN_PATH, date(2024, 6, 1))
    assert error.value.status == 409
    # the same policy listed twice is not a conflict
    assert applicable((SHANDONG, shandong_2019()), JINAN_PATH, date(2024, 6, 1)) == SHANDONG


def test_applicable_wants_a_date() -> None:
    from datetime import datetime

    with pytest.raises(TypeError):
        applicable(POLICIES, JINAN_PATH, datetime(2024, 6, 1))  # type: ignore[arg-type]


# --- validation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"code": "National 2018"}, "code"),
        ({"code": ""}, "code"),
        ({"name": " "}, "name"),
        ({"version": 0}, "version"),
        ({"version": True}, "version"),
        ({"effective_to": date(2019, 12, 31)}, "effective_to"),
        ({"effective_from": "2020-01-01"}, "effective_from"),
        ({"jurisdiction_scope": "37"}, "jurisdiction_scope"),
        ({"jurisdiction_scope": "100000"}, "jurisdiction_scope"),
        ({"rules": {}}, "rules"),
        ({"rules": {"minor_hazard": FixedRule(amount_fen=1)}}, "rules"),
        ({"rules": {GENERAL: {"mode": "fixed"}}}, "rules.general_hazard"),
        ({"rules": {MAJOR: PerConcealedDeathRule(per_death_fen=PER_DEATH)}}, "rules.major_hazard"),
        ({"per_report_cap_fen": 0}, "per_report_cap_fen"),
        ({"per_report_cap_fen": 2_000 * YUAN}, "rules.major_hazard"),  # below the rule's 3,000 元 minimum
        ({"cap_override_allowed": True}, "cap_override_allowed"),  # no cap to override
        ({"cap_override_allowed": 1, "per_report_cap_fen": 1}, "cap_override_allowed"),
        ({"reporter_caps": (ReporterCap(period="month", limit_fen=1),) * 2}, "reporter_caps"),
        ({"reporter_caps": ({"period": "month"},)}, "reporter_caps"),
        ({"verification_share_bp": 10_000}, "verification_share_bp"),
        ({"verification_share_bp": 0}, "verification_share_bp"),
        ({"exclusions": ["everyone"]}, "exclusions"),
        ({"anonymous": "maybe"}, "anonymous"),
        ({"claim_window_days": 0}, "claim_window_days"),
        ({"sources": "http://example.org"}, "sources"),
    ],
)
def test_policy_validation(overrides: dict, field: str) -> None:
    with pytest.raises(InvalidRewardPolicy) as error:
        fictional(**overrides)
    assert error.value.field == field and error.value.status == 422


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: FixedRule(amount_fen=0), "amount_fen"),
        (lambda: FixedRule(amount_fen=1.5), "amount_fen"),
        (lambda: FixedRule(amount_fen=10**12 + 1), "amount_fen"),
        (lambda: RangeRule(min_fen=500, max_fen=100), "min_fen"),
        (lambda: PercentOfPenaltyRule(rate_bp=0), "rate_bp"),
        (lambda: PercentOfPenaltyRule(rate_bp=10_001), "rate_bp"),
        (lambda: PercentOfPenaltyRule(rate_bp=1500, min_fen=10, max_fen=5), "min_fen"),
        (lambda: PerConcealedDeathRule(per_death_fen={AccidentLevel.GENERAL: 1}), "per_death_fen"),
        (lambda: PerConcealedDeathRule(per_death_fen={**PER_DEATH, "huge": 1}), "per_death_fen"),
        (lambda: PerConcealedDeathRule(per_death_fen=PER_DEATH, cap_fen=0), "cap_fen"),
        (lambda: FixedRule(amount_fen=1, excluded_categories="fire_safety"), "excluded_categories"),
        (lambda: ReporterCap(period="week", limit_fen=1), "period"),
        (lambda: ReporterCap(period="month", limit_fen=0), "limit_fen"),
        (lambda: ReporterCap(period="month", limit_fen=1, category=""), "category"),
        (lambda: EmployeeUplift(rate_bp=0), "rate_bp"),
        (lambda: EmployeeUplift(rate_bp=1, min_uplift_fen=10, max_uplift_fen=5), "min_uplift_fen"),
    ],
)
def test_part_validation(make: Any, field: str) -> None:
    with pytest.raises(InvalidRewardPolicy) as error:
        make()
    assert error.value.field == field


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"case_kind": "minor"}, "case_kind"),
        ({"verification": "maybe"}, "verification"),
        ({"stage": "payment"}, "stage"),
        ({"first_reporter": None}, "first_reporter"),
        ({"anonymous": "no"}, "anonymous"),
        ({"hazard_level": "general"}, "hazard_level"),  # a major-hazard case verified as a general hazard
        ({"hazard_level": "severe"}, "hazard_level"),
        ({"penalty_fen": -1}, "penalty_fen"),
        ({"penalty_fen": 1.0}, "penalty_fen"),
        ({"concealed_deaths": -1}, "concealed_deaths"),
        ({"case_kind": CONCEALED, "concealed_deaths": 2}, "accident_level"),
        ({"concealed_deaths": 2, "accident_level": "general"}, "concealed_deaths"),  # not a concealed accident
        ({"case_kind": CONCEALED, "accident_level": "catastrophic"}, "accident_level"),
        ({"paid_in_period_fen": {"month:*:*": -5}}, "paid_in_period_fen[month:*:*]"),
        ({"paid_for_this_report_fen": -1}, "paid_for_this_report_fen"),
        ({"discretionary_fen": -1}, "discretionary_fen"),
        ({"category": ""}, "category"),
    ],
)
def test_facts_validation(overrides: dict, field: str) -> None:
    with pytest.raises(InvalidRewardFacts) as error:
        facts(**overrides)
    assert error.value.field == field


def test_facts_accept_the_workflow_values() -> None:
    from app.workflow.schemas import HazardLevel
    from app.workflow.transitions import VerificationOutcome

    f = facts(case_kind="major_hazard", verification=VerificationOutcome.PARTLY_TRUE, hazard_level=HazardLevel.MAJOR)
    assert f.case_kind is MAJOR and f.stage is PENALTY
    # the hazard level of an illegal-production case is not checked against its kind
    assert facts(case_kind=ILLEGAL, hazard_level="general").case_kind is ILLEGAL


# --- JSON form -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", [*builtin_policies(), UPLIFT, PERIOD_CAPPED, TWO_STAGE, CAPPED, CLAIM_BY_CODE])
def test_policies_round_trip_through_json(policy: RewardPolicy) -> None:
    data = json.loads(json.dumps(policy_to_data(policy), ensure_ascii=False))
    assert parse_policy(data) == policy


def test_national_json_form() -> None:
    data = policy_to_data(NATIONAL)
    assert data["rules"]["major_hazard"] == {
        "mode": "percent_of_penalty",
        "excluded_categories": [],
        "rate_bp": 1500,
        "min_fen": 300_000,
        "max_fen": 30_000_000,
    }
    assert data["rules"]["concealed_accident"]["per_death_fen"] == {
        "general": 3_000_000,
        "larger": 4_000_000,
        "major": 5_000_000,
        "especially_major": 6_000_000,
    }
    assert data["effective_from"] == "2018-01-04" and data["jurisdiction_scope"] is None


NATIONAL_DEATHS = policy_to_data(NATIONAL)["rules"]["concealed_accident"]


def _national_data(**changes: Any) -> dict[str, Any]:
    data = policy_to_data(NATIONAL)
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], None),
        (_national_data(per_report_cap=1), "per_report_cap"),  # a typo is refused, not ignored
        ({k: v for k, v in _national_data().items() if k != "rules"}, "rules"),
        (_national_data(effective_from="2018-1-4"), "effective_from"),
        (_national_data(effective_from="2018-02-30"), "effective_from"),
        (_national_data(effective_to=20181231), "effective_to"),
        (_national_data(rules=[]), "rules"),
        (_national_data(rules={"major_hazard": {"mode": "lottery"}}), "rules.major_hazard.mode"),
        (_national_data(rules={"major_hazard": {"rate_bp": 1500}}), "rules.major_hazard"),
        (_national_data(rules={"major_hazard": {"mode": "fixed", "amount": 5}}), "rules.major_hazard.amount"),
        (_national_data(rules={"major_hazard": {"mode": "percent_of_penalty"}}), "rules.major_hazard"),
        (_national_data(reporter_caps={}), "reporter_caps"),
        (_national_data(reporter_caps=[{"period": "month", "limit": 1}]), "reporter_caps[0].limit"),
        (_national_data(employee_uplift={"rate": 1500}), "employee_uplift.rate"),
        (_national_data(exclusions="flagged"), "exclusions"),
        # errors inside nested objects name the full path
        (
            _national_data(rules={"major_hazard": {"mode": "percent_of_penalty", "rate_bp": 0}}),
            "rules.major_hazard.rate_bp",
        ),
        (
            _national_data(rules={"concealed_accident": {**NATIONAL_DEATHS, "cap_fen": 0}}),
            "rules.concealed_accident.cap_fen",
        ),
        (
            _national_data(rules={"concealed_accident": {**NATIONAL_DEATHS, "per_death_fen": {"general": 1}}}),
            "rules.concealed_accident.per_death_fen",
        ),
        (_national_data(reporter_caps=[{"period": "week", "limit_fen": 1}]), "reporter_caps[0].period"),
        (_national_data(reporter_caps=[{"period": "month"}]), "reporter_caps[0]"),
        (_national_data(employee_uplift={"rate_bp": 0}), "employee_uplift.rate_bp"),
        (_national_data(per_report_cap_fen=1), "rules.major_hazard"),  # below the rule's minimum
    ],
)
def test_parse_policy_refuses_bad_data(data: Any, field: str | None) -> None:
    with pytest.raises(InvalidRewardPolicy) as error:
        parse_policy(data)
    assert error.value.field == field


# --- the module itself -----------------------------------------------------------------------------------------


def test_error_classes_have_a_status_a_code_and_a_chinese_message() -> None:
    classes = [
        value
        for value in vars(policy_module).values()
        if isinstance(value, type) and issubclass(value, DomainError) and value.__module__ == policy_module.__name__
    ]
    assert len(classes) == 11
    assert len({cls.code for cls in classes}) == len(classes)
    for cls in classes:
        assert 400 <= cls.status < 600 and cls.code.isascii()
        assert any("\u4e00" <= ch <= "\u9fff" for ch in cls.message)
    assert NoRewardPolicy.status == 404 and NoRewardPolicy.code == "no_reward_policy"


def test_the_module_is_pure() -> None:
    code = (
        "import sys, app.rewards.policy; "
        "web = {'fastapi', 'starlette', 'sqlalchemy', 'pydantic'}; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in web); "
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


# --- properties ------------------------------------------------------------------------------------------------

AMOUNT = st.integers(min_value=1, max_value=10**9)
FEN = st.integers(min_value=0, max_value=10**9)


@st.composite
def rules_for(draw: st.DrawFn, kind: CaseKind) -> Any:
    modes = ["fixed", "range", "percent"] + (["death"] if kind is CONCEALED else [])
    mode = draw(st.sampled_from(modes))
    excluded = draw(st.frozensets(st.sampled_from(["gas", "fire_safety"]), max_size=1))
    if mode == "fixed":
        return FixedRule(amount_fen=draw(AMOUNT), excluded_categories=excluded)
    if mode == "range":
        low, high = sorted((draw(st.integers(0, 10**9)), draw(AMOUNT)))
        return RangeRule(min_fen=low, max_fen=max(high, 1), excluded_categories=excluded)
    if mode == "percent":
        low = draw(st.integers(0, 10**8))
        high = draw(st.none() | st.integers(max(low, 1), 10**10))
        return PercentOfPenaltyRule(rate_bp=draw(st.integers(1, 10_000)), min_fen=low, max_fen=high)
    table = {level: draw(AMOUNT) for level in AccidentLevel}
    return PerConcealedDeathRule(per_death_fen=table, cap_fen=draw(st.none() | AMOUNT))


@st.composite
def policies(draw: st.DrawFn) -> RewardPolicy:
    kinds = draw(st.lists(st.sampled_from(list(CaseKind)), min_size=1, unique=True))
    rules = {kind: draw(rules_for(kind)) for kind in kinds}
    floor = max(rule.minimum_fen for rule in rules.values())
    cap = draw(st.none() | st.integers(max(floor, 1), 10**10))
    reporter_caps = draw(
        st.lists(
            st.builds(
                ReporterCap,
                period=st.sampled_from(list(CapPeriod)),
                limit_fen=AMOUNT,
                case_kind=st.none() | st.sampled_from(list(CaseKind)),
                category=st.none() | st.sampled_from(["gas", "fire_safety"]),
            ),
            max_size=3,
            unique_by=lambda c: c.key,
        )
    )
    uplift = draw(
        st.none()
        | st.builds(
            lambda rate, low, extra: EmployeeUplift(
                rate_bp=rate, min_uplift_fen=low, max_uplift_fen=None if extra is None else low + extra
            ),
            st.integers(1, 10_000),
            st.integers(0, 10**7),
            st.none() | AMOUNT,
        )
    )
    return RewardPolicy(
        code="property",
        name="性质测试政策",
        version=draw(st.integers(1, 5)),
        effective_from=date(2020, 1, 1),
        rules=rules,
        per_report_cap_fen=cap,
        cap_override_allowed=cap is not None and draw(st.booleans()),
        reporter_caps=tuple(reporter_caps),
        employee_uplift=uplift,
        verification_share_bp=draw(st.none() | st.integers(1, 9_999)),
        exclusions=draw(st.frozensets(st.sampled_from(list(Exclusion)))),
        anonymous=draw(st.sampled_from(list(AnonymousPolicy))),
        claim_window_days=draw(st.integers(1, 365)),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[RewardPolicy, RewardFacts]:
    policy = draw(policies())
    kind = draw(st.sampled_from(list(policy.rules)) | st.sampled_from(list(CaseKind)))
    rule = policy.rules.get(kind)
    category = draw(st.none() | st.sampled_from(["gas", "fire_safety", "construction"]))
    stage = draw(st.sampled_from(list(Stage)))
    penalty = draw(st.integers(0, 10**10) if stage is PENALTY else st.none() | st.integers(0, 10**10))
    deaths = draw(st.integers(0, 50)) if kind is CONCEALED else 0
    override = policy.cap_override_allowed and draw(st.booleans())
    paid = {cap.key: draw(FEN) for cap in policy.reporter_caps_for(kind, category)}
    # Most cases have a reporter with nothing against them, so the amount arithmetic is exercised often.
    clean = draw(st.sampled_from([True, True, False]))
    flag = st.just(False) if clean else st.booleans()
    f = RewardFacts(
        case_kind=kind,
        verification=draw(st.sampled_from(["true", "partly_true"] if clean else ["true", "partly_true", "false"])),
        stage=stage,
        first_reporter=clean or draw(st.booleans()),
        anonymous=draw(flag),
        penalty_fen=penalty,
        concealed_deaths=deaths,
        accident_level=draw(st.sampled_from(list(AccidentLevel))) if deaths else None,
        category=category,
        is_employee_of_unit=draw(st.booleans()),
        is_regulator_staff_or_relative=draw(flag),
        excluded=draw(flag),
        claim_by_code_possible=draw(st.booleans()),
        paid_in_period_fen=paid,
        paid_for_this_report_fen=draw(st.one_of(st.just(0), st.just(0), FEN)),
        discretionary_fen=draw(st.integers(rule.min_fen, rule.max_fen)) if isinstance(rule, RangeRule) else None,
        cap_override=override,
        cap_override_reason="举报并消除群死群伤重大事故隐患" if override else "",
    )
    return policy, f


@given(cases())
def test_property_amount_is_a_nonnegative_integer_explained_to_the_last_line(case: tuple) -> None:
    policy, f = case
    decision = evaluate(policy, f)
    assert_well_formed(decision)
    assert decision.policy_code == policy.code and decision.policy_version == policy.version


@given(cases())
def test_property_never_above_the_caps(case: tuple) -> None:
    policy, f = case
    decision = evaluate(policy, f)
    if policy.per_report_cap_fen is not None and not f.cap_override:
        assert decision.amount_fen <= policy.per_report_cap_fen
        assert decision.total_fen is None or decision.total_fen <= policy.per_report_cap_fen
    for cap in policy.reporter_caps_for(f.case_kind, f.category):
        assert decision.amount_fen <= max(cap.limit_fen - f.paid_in_period_fen[cap.key], 0)
    if decision.total_fen is not None:
        assert decision.amount_fen <= decision.total_fen


@given(cases(), st.integers(0, 10**10), st.integers(0, 10**10))
def test_property_monotonic_in_the_penalty(case: tuple, a: int, b: int) -> None:
    policy, f = case
    if not isinstance(policy.rules.get(f.case_kind), PercentOfPenaltyRule):
        f = replace(f, case_kind=MAJOR, concealed_deaths=0, accident_level=None, discretionary_fen=None)
        policy = replace(policy, rules={**policy.rules, MAJOR: PercentOfPenaltyRule(rate_bp=1500)})
        f = replace(f, paid_in_period_fen={c.key: 0 for c in policy.reporter_caps_for(MAJOR, f.category)})
    low, high = sorted((a, b))
    assert (
        evaluate(policy, replace(f, penalty_fen=low)).amount_fen
        <= evaluate(policy, replace(f, penalty_fen=high)).amount_fen
    )


@given(cases())
def test_property_stages_add_up_to_the_total(case: tuple) -> None:
    policy, f = case
    f = replace(f, paid_for_this_report_fen=0, paid_in_period_fen={k: 0 for k in f.paid_in_period_fen})
    if f.penalty_fen is None:
        f = replace(f, penalty_fen=0)
    policy = replace(policy, reporter_caps=())  # period caps may defer money; the stages themselves must not
    first = evaluate(policy, replace(f, stage=VERIFICATION))
    second = evaluate(policy, replace(f, stage=PENALTY, paid_for_this_report_fen=first.amount_fen))
    total = evaluate(policy, replace(f, stage=PENALTY)).amount_fen
    assert first.amount_fen + second.amount_fen == total == (second.total_fen or 0)


@given(policies())
def test_property_policies_round_trip_through_json(policy: RewardPolicy) -> None:
    assert parse_policy(json.loads(json.dumps(policy_to_data(policy)))) == policy
