"""Reward policies as versioned data, and the reward they give for a case. Pure: no I/O, no clock, no database;
imports neither FastAPI nor SQLAlchemy.

A :class:`RewardPolicy` is one version of one locality's reward rules (国家 安监总财〔2018〕19号, 山东省, 深圳市, ...),
in force from ``effective_from`` to ``effective_to`` (both inclusive, as the documents state them: "自…起施行",
"有效期至…"). :func:`applicable` picks the policy for a case's place and date; :func:`evaluate` turns the facts the
department established (:class:`RewardFacts`) into a :class:`RewardDecision`: the amount to pay now, whether the
reporter is eligible at all, and a line-by-line explanation in Chinese that an auditor can recompute by hand.
:func:`parse_policy` and :func:`policy_to_data` convert to and from the JSON an admin edits and the database stores.

Money is integer fen (1 元 = 100 分) everywhere. Rates are integer basis points (1500 = 15%). A share of an amount
is rounded to the fen **half up** (四舍五入, :func:`apply_rate`): that is the rounding Chinese finance and audit
practice uses and an auditor redoes by hand; banker's rounding would make a single line look wrong to them for no
benefit, since each reward is rounded once, not summed over millions of rows. The rounding favours the reporter by
at most half a fen. Integer arithmetic does the rounding, so no float ever touches money.

Order of evaluation (each step writes a line with the running amount; the last line's amount is ``amount_fen``):

1. Eligibility. Every reason that applies is listed (a false report by an excluded reporter shows both):
   核查不属实; not the first report of the matter (合并的重复举报只奖励首报人); regulator staff or their relatives;
   reporters flagged by the proposer as excluded (企业安全管理人员举报本职事项, 第三方机构举报服务对象, ...);
   anonymous reports under ``no_reward``, or under ``claim_by_code`` without a query code; a case kind the policy
   has no rule for (the national 2018 rules do not reward 一般事故隐患); a category a rule excludes (山东: 火灾隐患).
   Any reason → ``eligible=False`` and 0.
   核查部分属实 is eligible: the facts the department records (penalty, deaths, discretionary amount) are those of
   the verified part, so the ordinary formula on them already rewards exactly what proved true. A haircut on top
   would punish the reporter twice.
2. The rule for the case kind: ``fixed``, ``range`` (the proposer's pick, checked against the range),
   ``percent_of_penalty`` (rate, then minimum and maximum), ``per_concealed_death`` (per death by accident level,
   then the cap). A percent rule with no penalty decision yet gives 0 with ``awaiting_penalty=True``: the reporter
   is eligible, the amount is simply not known yet. A penalty decision of 0 fen (a verified 重大隐患 that was not
   fined) is a decision: the literal national formula gives the minimum (3,000 元).
3. Employee uplift (从业人员举报本单位): rate, raised to the minimum uplift, limited to the uplift cap; only on a
   positive amount.
4. Per-report cap, exceeded only with an explicit override and a reason, and only where the policy allows it
   (深圳: 举报并消除群死群伤重特大事故隐患的可突破). The result is the report's *total* reward.
5. Stage. Two-stage policies pay ``verification_share_bp`` of the total at the verification stage and the rest at
   the penalty stage; single-stage policies pay the total at whichever stage first knows it. Whatever was already
   paid for this report is subtracted (never below 0, no clawback), so the stages always add up to the total.
6. Per-reporter caps per month or year, optionally only for one case kind and/or category (深圳龙华: 同一类型
   一般隐患每月累计 ≤ 1,000 元): the amount is reduced to what is left under each cap, never below 0. The caller
   supplies what was already paid in each cap's period, keyed by :attr:`ReporterCap.key`.

Policy choice (:func:`applicable`): among the policies in force on the date, the one whose jurisdiction is deepest
in the case's path wins (county over city over province over national); among equally deep ones the later
``effective_from`` wins (a new document supersedes the old one even before anyone sets the old one's end date),
then the higher version. Two different policies still tied are a configuration error, refused rather than chosen
by database order. Which date to ask for is the caller's choice; the date the report was received is the natural
one (the reporter is rewarded under the rules that were promised when they reported).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar

from app.core.errors import Conflict, InvalidInput, NotFound
from app.workflow.transitions import VerificationOutcome

MAX_FEN = 10**12
"""Upper bound for any amount of money (100 亿元), as for penalties in the verification command."""
BASIS_POINTS = 10_000
"""100% in basis points."""
DEFAULT_CLAIM_WINDOW_DAYS = 60
MAX_CLAIM_WINDOW_DAYS = 3660
MAX_DEATHS = 100_000

# adcodes: 6 digits for provinces, cities and counties, 9 or 12 for townships and villages.
_ADCODE = re.compile(r"\d{6}(?:\d{3}){0,2}")
_NATIONAL_ADCODE = "100000"
_POLICY_CODE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# --- errors ----------------------------------------------------------------------------------------------------


class InvalidRewardPolicy(InvalidInput, ValueError):
    """A policy that cannot be right. Also a ValueError, so validators that expect one can use it."""

    code = "invalid_reward_policy"
    message = "奖励政策配置不合法"


class InvalidRewardFacts(InvalidInput, ValueError):
    code = "invalid_reward_facts"
    message = "奖励核定所需的案件事实不合法"


class DiscretionaryAmountRequired(InvalidInput):
    code = "discretionary_amount_required"
    message = "该类举报的奖励为区间金额，请填写酌定金额"


class DiscretionaryAmountOutOfRange(InvalidInput):
    code = "discretionary_amount_out_of_range"
    message = "酌定金额超出奖励区间"


class DiscretionaryAmountNotApplicable(InvalidInput):
    code = "discretionary_amount_not_applicable"
    message = "该类举报的奖励金额由规则确定，不能酌定"


class PenaltyRequired(InvalidInput):
    code = "penalty_required"
    message = "处罚决定阶段须填写行政处罚金额"


class CapOverrideReasonRequired(InvalidInput):
    code = "cap_override_reason_required"
    message = "突破单笔奖励上限须说明理由"


class CapOverrideNotAllowed(InvalidInput):
    code = "cap_override_not_allowed"
    message = "该奖励政策不允许突破单笔奖励上限"


class PaidInPeriodRequired(InvalidInput):
    code = "paid_in_period_required"
    message = "缺少举报人本期已获奖励金额，无法核对累计上限"


class NoRewardPolicy(NotFound):
    code = "no_reward_policy"
    message = "该地区在该日期没有生效的举报奖励政策"


class AmbiguousRewardPolicy(Conflict):
    code = "ambiguous_reward_policy"
    message = "同一地区同一日期有多个同等适用的奖励政策，请管理员调整生效日期或版本"


# --- vocabulary ------------------------------------------------------------------------------------------------


class CaseKind(StrEnum):
    GENERAL_HAZARD = "general_hazard"
    MAJOR_HAZARD = "major_hazard"
    ILLEGAL_PRODUCTION = "illegal_production"
    CONCEALED_ACCIDENT = "concealed_accident"

    @property
    def label(self) -> str:
        return _CASE_KIND_LABELS[self]


_CASE_KIND_LABELS = {
    CaseKind.GENERAL_HAZARD: "一般事故隐患",
    CaseKind.MAJOR_HAZARD: "重大事故隐患",
    CaseKind.ILLEGAL_PRODUCTION: "非法违法生产经营",
    CaseKind.CONCEALED_ACCIDENT: "瞒报谎报事故",
}

# The hazard level recorded at verification (workflow's HazardLevel values) and the case kind it implies.
_HAZARD_LEVEL_KINDS = {"general": CaseKind.GENERAL_HAZARD, "major": CaseKind.MAJOR_HAZARD}


class AccidentLevel(StrEnum):
    GENERAL = "general"
    LARGER = "larger"
    MAJOR = "major"
    ESPECIALLY_MAJOR = "especially_major"

    @property
    def label(self) -> str:
        return _ACCIDENT_LEVEL_LABELS[self]


_ACCIDENT_LEVEL_LABELS = {
    AccidentLevel.GENERAL: "一般事故",
    AccidentLevel.LARGER: "较大事故",
    AccidentLevel.MAJOR: "重大事故",
    AccidentLevel.ESPECIALLY_MAJOR: "特别重大事故",
}


class RuleMode(StrEnum):
    FIXED = "fixed"
    RANGE = "range"
    PERCENT_OF_PENALTY = "percent_of_penalty"
    PER_CONCEALED_DEATH = "per_concealed_death"


class CapPeriod(StrEnum):
    MONTH = "month"
    YEAR = "year"


_PERIOD_LABELS = {CapPeriod.MONTH: "本月", CapPeriod.YEAR: "本年"}


class Exclusion(StrEnum):
    REGULATOR_STAFF_OR_RELATIVE = "regulator_staff_or_relative"
    FLAGGED = "flagged"


class AnonymousPolicy(StrEnum):
    NO_REWARD = "no_reward"
    CLAIM_BY_CODE = "claim_by_code"


class Stage(StrEnum):
    VERIFICATION = "verification"
    PENALTY = "penalty"


class LineCode(StrEnum):
    """The machine code of an explanation line. Stable: reports and exports filter on them."""

    POLICY = "policy"
    VERIFICATION_FALSE = "verification_false"
    NOT_FIRST_REPORTER = "not_first_reporter"
    REGULATOR_STAFF = "regulator_staff_or_relative"
    EXCLUDED = "reporter_excluded"
    ANONYMOUS_NOT_REWARDED = "anonymous_not_rewarded"
    ANONYMOUS_WITHOUT_CODE = "anonymous_without_query_code"
    CASE_KIND_NOT_COVERED = "case_kind_not_covered"
    CATEGORY_NOT_COVERED = "category_not_covered"
    ANONYMOUS_CLAIM_BY_CODE = "anonymous_claim_by_code"
    PARTLY_TRUE = "partly_true"
    FIXED = "fixed_amount"
    RANGE = "range_pick"
    PERCENT = "percent_of_penalty"
    AWAITING_PENALTY = "awaiting_penalty"
    PER_DEATH = "per_concealed_death"
    RAISED_TO_MINIMUM = "raised_to_minimum"
    LOWERED_TO_MAXIMUM = "lowered_to_maximum"
    EMPLOYEE_UPLIFT = "employee_uplift"
    PER_REPORT_CAP = "per_report_cap"
    CAP_OVERRIDDEN = "per_report_cap_overridden"
    CAP_OVERRIDE_UNUSED = "per_report_cap_override_unused"
    STAGE_SHARE = "stage_share"
    ALREADY_PAID = "already_paid_for_report"
    REPORTER_CAP = "reporter_period_cap"
    TOTAL = "total"


INELIGIBLE_CODES = frozenset(
    {
        LineCode.VERIFICATION_FALSE,
        LineCode.NOT_FIRST_REPORTER,
        LineCode.REGULATOR_STAFF,
        LineCode.EXCLUDED,
        LineCode.ANONYMOUS_NOT_REWARDED,
        LineCode.ANONYMOUS_WITHOUT_CODE,
        LineCode.CASE_KIND_NOT_COVERED,
        LineCode.CATEGORY_NOT_COVERED,
    }
)


# --- money -----------------------------------------------------------------------------------------------------


def apply_rate(amount_fen: int, rate_bp: int) -> int:
    """``amount_fen × rate_bp / 10000`` rounded to the fen half up (四舍五入); both non-negative integers."""
    quotient, remainder = divmod(amount_fen * rate_bp, BASIS_POINTS)
    return quotient + (1 if 2 * remainder >= BASIS_POINTS else 0)


def format_fen(amount_fen: int) -> str:
    return f"{amount_fen:,} 分"


def format_yuan(amount_fen: int) -> str:
    yuan, fen = divmod(amount_fen, 100)
    return f"{yuan:,} 元" if fen == 0 else f"{yuan:,}.{fen:02d} 元"


def format_rate(rate_bp: int) -> str:
    whole, hundredths = divmod(rate_bp, 100)
    return f"{whole}%" if hundredths == 0 else f"{whole}.{hundredths:02d}".rstrip("0") + "%"


def _exact_share(amount_fen: int, rate_bp: int) -> str:
    # Decimal only to print the unrounded product (49,999.95) next to the rounded one; it never decides an amount.
    return f"{Decimal(amount_fen * rate_bp) / BASIS_POINTS:,} 分"


def _rate_line(amount_fen: int, rate_bp: int) -> tuple[int, str]:
    """The rounded share and its arithmetic as text, showing the rounding when there is any."""
    result = apply_rate(amount_fen, rate_bp)
    text = f"{format_fen(amount_fen)} × {format_rate(rate_bp)} = "
    if result * BASIS_POINTS == amount_fen * rate_bp:
        return result, text + format_fen(result)
    return result, text + f"{_exact_share(amount_fen, rate_bp)}，四舍五入到分为 {format_fen(result)}"


# --- validation helpers ----------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_fen(error: type[InvalidInput], value: Any, name: str, *, minimum: int = 0, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not _is_int(value) or not minimum <= value <= MAX_FEN:
        raise error(f"{name} 必须是 {minimum}–{MAX_FEN} 之间的整数（分），收到 {value!r}", field=name)


def _check_rate(
    error: type[InvalidInput], value: Any, name: str, *, minimum: int = 1, maximum: int = BASIS_POINTS
) -> None:
    if not _is_int(value) or not minimum <= value <= maximum:
        raise error(f"{name} 必须是 {minimum}–{maximum} 之间的整数（基点，10000 = 100%），收到 {value!r}", field=name)


def _check_bool(error: type[InvalidInput], value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise error(f"{name} 必须是布尔值，收到 {value!r}", field=name)


def _enum(error: type[InvalidInput], enum: type[Any], value: Any, name: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = "、".join(member.value for member in enum)
        raise error(f"{name} 必须是 {allowed} 之一，收到 {value!r}", field=name) from None


def _check_date(value: Any, name: str) -> None:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidRewardPolicy(f"{name} 必须是日期，收到 {value!r}", field=name)


def _set(self: Any, name: str, value: Any) -> None:
    object.__setattr__(self, name, value)


def _categories(value: Any, name: str) -> frozenset[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidRewardPolicy(f"{name} 必须是行业领域代码的集合", field=name)
    codes = frozenset(value)
    if not all(isinstance(code, str) and code.strip() for code in codes):
        raise InvalidRewardPolicy(f"{name} 中有空的或非字符串的行业领域代码", field=name)
    return codes


# --- rules -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Rule:
    """What the rules of all modes share: categories the rule does not apply to (山东: 火灾隐患奖励不适用本款)."""

    mode: ClassVar[RuleMode]
    excluded_categories: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _set(self, "excluded_categories", _categories(self.excluded_categories, "excluded_categories"))

    @property
    def maximum_fen(self) -> int | None:
        """The most this rule can give before uplift, or None when it has no upper bound of its own."""
        raise NotImplementedError

    @property
    def minimum_fen(self) -> int:
        return 0


@dataclass(frozen=True, kw_only=True)
class FixedRule(_Rule):
    """A fixed sum per verified report (深圳: 一般隐患每宗 500 元)."""

    mode: ClassVar[RuleMode] = RuleMode.FIXED
    amount_fen: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_fen(InvalidRewardPolicy, self.amount_fen, "amount_fen", minimum=1)

    @property
    def maximum_fen(self) -> int:
        return self.amount_fen

    @property
    def minimum_fen(self) -> int:
        return self.amount_fen


@dataclass(frozen=True, kw_only=True)
class RangeRule(_Rule):
    """A range; the proposing department picks the amount (山东: 一般隐患 500–5,000 元)."""

    mode: ClassVar[RuleMode] = RuleMode.RANGE
    min_fen: int
    max_fen: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_fen(InvalidRewardPolicy, self.min_fen, "min_fen")
        _check_fen(InvalidRewardPolicy, self.max_fen, "max_fen", minimum=1)
        if self.min_fen > self.max_fen:
            raise InvalidRewardPolicy(
                f"区间下限 {format_fen(self.min_fen)} 高于上限 {format_fen(self.max_fen)}", field="min_fen"
            )

    @property
    def maximum_fen(self) -> int:
        return self.max_fen

    @property
    def minimum_fen(self) -> int:
        return self.min_fen


@dataclass(frozen=True, kw_only=True)
class PercentOfPenaltyRule(_Rule):
    """A share of the administrative penalty with a minimum and an optional maximum (国家: 15%, 3,000–300,000 元)."""

    mode: ClassVar[RuleMode] = RuleMode.PERCENT_OF_PENALTY
    rate_bp: int
    min_fen: int = 0
    max_fen: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_rate(InvalidRewardPolicy, self.rate_bp, "rate_bp")
        _check_fen(InvalidRewardPolicy, self.min_fen, "min_fen")
        _check_fen(InvalidRewardPolicy, self.max_fen, "max_fen", minimum=1, optional=True)
        if self.max_fen is not None and self.min_fen > self.max_fen:
            raise InvalidRewardPolicy(
                f"最低奖励 {format_fen(self.min_fen)} 高于最高奖励 {format_fen(self.max_fen)}", field="min_fen"
            )

    @property
    def maximum_fen(self) -> int | None:
        return self.max_fen

    @property
    def minimum_fen(self) -> int:
        return self.min_fen


@dataclass(frozen=True, kw_only=True)
class PerConcealedDeathRule(_Rule):
    """A sum per confirmed concealed death by the accident's final level, with an optional cap (国家: 3/4/5/6 万
    元 per death for 一般/较大/重大/特别重大, at most 300,000 元). Every level must have its sum."""

    mode: ClassVar[RuleMode] = RuleMode.PER_CONCEALED_DEATH
    per_death_fen: Mapping[AccidentLevel, int] = field(hash=False)
    cap_fen: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.per_death_fen, Mapping):
            raise InvalidRewardPolicy("per_death_fen 必须是 事故等级 → 金额 的映射", field="per_death_fen")
        table: dict[AccidentLevel, int] = {}
        for key, amount in self.per_death_fen.items():
            level = _enum(InvalidRewardPolicy, AccidentLevel, key, "per_death_fen")
            _check_fen(InvalidRewardPolicy, amount, f"per_death_fen.{level.value}", minimum=1)
            table[level] = amount
        missing = [level.label for level in AccidentLevel if level not in table]
        if missing:
            raise InvalidRewardPolicy(f"缺少这些事故等级的每人奖励金额：{'、'.join(missing)}", field="per_death_fen")
        _set(self, "per_death_fen", MappingProxyType({level: table[level] for level in AccidentLevel}))
        _check_fen(InvalidRewardPolicy, self.cap_fen, "cap_fen", minimum=1, optional=True)

    @property
    def maximum_fen(self) -> int | None:
        return self.cap_fen


RewardRule = FixedRule | RangeRule | PercentOfPenaltyRule | PerConcealedDeathRule
_RULE_CLASSES: dict[RuleMode, type[RewardRule]] = {
    cls.mode: cls for cls in (FixedRule, RangeRule, PercentOfPenaltyRule, PerConcealedDeathRule)
}


# --- policy ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReporterCap:
    """At most ``limit_fen`` to one reporter per calendar month or year, counting only reports of ``case_kind``
    and/or ``category`` when given (and applying only to those)."""

    period: CapPeriod
    limit_fen: int
    case_kind: CaseKind | None = None
    category: str | None = None

    def __post_init__(self) -> None:
        _set(self, "period", _enum(InvalidRewardPolicy, CapPeriod, self.period, "period"))
        _check_fen(InvalidRewardPolicy, self.limit_fen, "limit_fen", minimum=1)
        if self.case_kind is not None:
            _set(self, "case_kind", _enum(InvalidRewardPolicy, CaseKind, self.case_kind, "case_kind"))
        if self.category is not None and (not isinstance(self.category, str) or not self.category.strip()):
            raise InvalidRewardPolicy(f"category 必须是行业领域代码，收到 {self.category!r}", field="category")

    @property
    def key(self) -> str:
        """The key under which the caller reports what was already paid in this cap's period (``month:*:*``,
        ``month:general_hazard:*``, ``year:*:gas``)."""
        return f"{self.period.value}:{self.case_kind.value if self.case_kind else '*'}:{self.category or '*'}"

    def applies_to(self, case_kind: CaseKind, category: str | None) -> bool:
        return (self.case_kind is None or self.case_kind == case_kind) and (
            self.category is None or self.category == category
        )

    def period_of(self, day: date) -> tuple[date, date]:
        """First and last day (inclusive) of the period containing ``day`` (a date in China time)."""
        if self.period is CapPeriod.YEAR:
            return date(day.year, 1, 1), date(day.year, 12, 31)
        next_month = date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
        return day.replace(day=1), date.fromordinal(next_month.toordinal() - 1)

    @property
    def scope_label(self) -> str:
        parts = [self.case_kind.label if self.case_kind else "", f"“{self.category}”类" if self.category else ""]
        return "、".join(part for part in parts if part) or "全部举报"


@dataclass(frozen=True, kw_only=True)
class EmployeeUplift:
    """从业人员举报本单位: ``rate_bp`` more, at least ``min_uplift_fen``, at most ``max_uplift_fen`` more
    (河南 2025: +15%, 最低上浮 1,000 元). The total stays under the policy's per-report cap."""

    rate_bp: int
    min_uplift_fen: int = 0
    max_uplift_fen: int | None = None

    def __post_init__(self) -> None:
        _check_rate(InvalidRewardPolicy, self.rate_bp, "rate_bp")
        _check_fen(InvalidRewardPolicy, self.min_uplift_fen, "min_uplift_fen")
        _check_fen(InvalidRewardPolicy, self.max_uplift_fen, "max_uplift_fen", minimum=1, optional=True)
        if self.max_uplift_fen is not None and self.min_uplift_fen > self.max_uplift_fen:
            raise InvalidRewardPolicy("最低上浮金额高于上浮上限", field="min_uplift_fen")


@dataclass(frozen=True, kw_only=True)
class RewardPolicy:
    """One version of one locality's reward rules. See the module doc for how it is applied.

    ``rules``: the rule per case kind; a kind without a rule is not rewarded under this policy.
    ``jurisdiction_scope``: the adcode the policy covers (with everything below it), None for national.
    ``verification_share_bp``: None for single-stage payment; else the share of the total paid at verification.
    ``sources``: where the rules come from (URLs, document numbers), for the auditor.
    """

    code: str
    name: str
    version: int
    effective_from: date
    effective_to: date | None = None
    jurisdiction_scope: str | None = None
    rules: Mapping[CaseKind, RewardRule] = field(hash=False)
    per_report_cap_fen: int | None = None
    cap_override_allowed: bool = False
    reporter_caps: tuple[ReporterCap, ...] = ()
    employee_uplift: EmployeeUplift | None = None
    verification_share_bp: int | None = None
    exclusions: frozenset[Exclusion] = frozenset(Exclusion)
    anonymous: AnonymousPolicy = AnonymousPolicy.NO_REWARD
    claim_window_days: int = DEFAULT_CLAIM_WINDOW_DAYS
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not _POLICY_CODE.fullmatch(self.code):
            raise InvalidRewardPolicy(f"政策代码须为 1–64 位小写字母、数字或 _ . -，收到 {self.code!r}", field="code")
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidRewardPolicy("政策名称不能为空", field="name")
        if not _is_int(self.version) or self.version < 1:
            raise InvalidRewardPolicy(f"版本号必须是正整数，收到 {self.version!r}", field="version")
        self._check_dates()
        self._check_scope()
        self._freeze_rules()
        self._check_caps()
        self._check_payment()

    def _check_dates(self) -> None:
        _check_date(self.effective_from, "effective_from")
        if self.effective_to is not None:
            _check_date(self.effective_to, "effective_to")
            if self.effective_to < self.effective_from:
                raise InvalidRewardPolicy(
                    f"失效日期 {self.effective_to} 早于生效日期 {self.effective_from}", field="effective_to"
                )

    def _check_scope(self) -> None:
        scope = self.jurisdiction_scope
        if scope is None:
            return
        if not isinstance(scope, str) or not _ADCODE.fullmatch(scope):
            raise InvalidRewardPolicy(
                f"适用地区须为 6、9 或 12 位行政区划代码，收到 {scope!r}", field="jurisdiction_scope"
            )
        if scope == _NATIONAL_ADCODE:
            raise InvalidRewardPolicy("全国性政策的适用地区留空，不填 100000", field="jurisdiction_scope")

    def _freeze_rules(self) -> None:
        if not isinstance(self.rules, Mapping) or not self.rules:
            raise InvalidRewardPolicy("至少要为一类举报配置奖励规则", field="rules")
        rules: dict[CaseKind, RewardRule] = {}
        for key, rule in self.rules.items():
            kind = _enum(InvalidRewardPolicy, CaseKind, key, "rules")
            if not isinstance(rule, FixedRule | RangeRule | PercentOfPenaltyRule | PerConcealedDeathRule):
                raise InvalidRewardPolicy(f"{kind.label}的奖励规则类型不正确：{rule!r}", field=f"rules.{kind.value}")
            if isinstance(rule, PerConcealedDeathRule) and kind is not CaseKind.CONCEALED_ACCIDENT:
                raise InvalidRewardPolicy(
                    f"按瞒报死亡人数计奖只适用于瞒报谎报事故，不适用于{kind.label}", field=f"rules.{kind.value}"
                )
            rules[kind] = rule
        _set(self, "rules", MappingProxyType({kind: rules[kind] for kind in CaseKind if kind in rules}))

    def _check_caps(self) -> None:
        _check_fen(InvalidRewardPolicy, self.per_report_cap_fen, "per_report_cap_fen", minimum=1, optional=True)
        _check_bool(InvalidRewardPolicy, self.cap_override_allowed, "cap_override_allowed")
        if self.cap_override_allowed and self.per_report_cap_fen is None:
            raise InvalidRewardPolicy("允许突破单笔上限时必须设置单笔上限", field="cap_override_allowed")
        cap = self.per_report_cap_fen
        for kind, rule in self.rules.items():
            if cap is not None and rule.minimum_fen > cap:
                raise InvalidRewardPolicy(
                    f"{kind.label}的最低奖励 {format_fen(rule.minimum_fen)} 高于单笔上限 {format_fen(cap)}",
                    field=f"rules.{kind.value}",
                )
        if isinstance(self.reporter_caps, str | bytes) or not isinstance(self.reporter_caps, Iterable):
            raise InvalidRewardPolicy("reporter_caps 必须是累计上限的列表", field="reporter_caps")
        caps = tuple(self.reporter_caps)
        if not all(isinstance(c, ReporterCap) for c in caps):
            raise InvalidRewardPolicy("reporter_caps 中有不是 ReporterCap 的值", field="reporter_caps")
        keys = [c.key for c in caps]
        duplicated = sorted({k for k in keys if keys.count(k) > 1})
        if duplicated:
            raise InvalidRewardPolicy(f"同一范围的累计上限配置了多次：{'、'.join(duplicated)}", field="reporter_caps")
        _set(self, "reporter_caps", caps)

    def _check_payment(self) -> None:
        if self.employee_uplift is not None and not isinstance(self.employee_uplift, EmployeeUplift):
            raise InvalidRewardPolicy("employee_uplift 必须是 EmployeeUplift 或留空", field="employee_uplift")
        if self.verification_share_bp is not None:
            _check_rate(
                InvalidRewardPolicy, self.verification_share_bp, "verification_share_bp", maximum=BASIS_POINTS - 1
            )
        if isinstance(self.exclusions, str | bytes) or not isinstance(self.exclusions, Iterable):
            raise InvalidRewardPolicy("exclusions 必须是排除情形的集合", field="exclusions")
        _set(
            self,
            "exclusions",
            frozenset(_enum(InvalidRewardPolicy, Exclusion, e, "exclusions") for e in self.exclusions),
        )
        _set(self, "anonymous", _enum(InvalidRewardPolicy, AnonymousPolicy, self.anonymous, "anonymous"))
        days = self.claim_window_days
        if not _is_int(days) or not 1 <= days <= MAX_CLAIM_WINDOW_DAYS:
            raise InvalidRewardPolicy(
                f"领奖期限必须是 1–{MAX_CLAIM_WINDOW_DAYS} 之间的整数（天），收到 {days!r}", field="claim_window_days"
            )
        if isinstance(self.sources, str) or not all(isinstance(s, str) for s in self.sources):
            raise InvalidRewardPolicy("sources 必须是字符串列表", field="sources")
        _set(self, "sources", tuple(self.sources))

    @property
    def two_stage(self) -> bool:
        return self.verification_share_bp is not None

    def in_force(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    def reporter_caps_for(self, case_kind: CaseKind, category: str | None) -> tuple[ReporterCap, ...]:
        """The per-reporter caps a report of this kind and category counts against: for each, the caller sums
        what the reporter was already paid in :meth:`ReporterCap.period_of` and passes it under its ``key``."""
        return tuple(cap for cap in self.reporter_caps if cap.applies_to(CaseKind(case_kind), category))


# --- facts and decision ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RewardFacts:
    """What the department established about a case and its reporter, as the reward proposal needs it.

    ``first_reporter`` and ``anonymous`` have no default on purpose: a forgotten flag must not pay a duplicate.
    ``hazard_level`` (workflow's ``general``/``major``) is checked against ``case_kind`` when given.
    ``paid_in_period_fen``: for each per-reporter cap that applies (:meth:`RewardPolicy.reporter_caps_for`), what
    the reporter was already paid in that cap's period, keyed by :attr:`ReporterCap.key`; it includes any earlier
    stage of this very report. ``paid_for_this_report_fen``: what earlier stages of this report paid.
    """

    case_kind: CaseKind
    verification: VerificationOutcome
    stage: Stage
    first_reporter: bool
    anonymous: bool
    hazard_level: str | None = None
    penalty_fen: int | None = None
    concealed_deaths: int = 0
    accident_level: AccidentLevel | None = None
    category: str | None = None
    is_employee_of_unit: bool = False
    is_regulator_staff_or_relative: bool = False
    excluded: bool = False
    excluded_reason: str = ""
    claim_by_code_possible: bool = False
    paid_in_period_fen: Mapping[str, int] = field(default_factory=dict, hash=False)
    paid_for_this_report_fen: int = 0
    discretionary_fen: int | None = None
    cap_override: bool = False
    cap_override_reason: str = ""

    def __post_init__(self) -> None:
        _set(self, "case_kind", _enum(InvalidRewardFacts, CaseKind, self.case_kind, "case_kind"))
        _set(self, "verification", _enum(InvalidRewardFacts, VerificationOutcome, self.verification, "verification"))
        _set(self, "stage", _enum(InvalidRewardFacts, Stage, self.stage, "stage"))
        for name in (
            "first_reporter",
            "anonymous",
            "is_employee_of_unit",
            "is_regulator_staff_or_relative",
            "excluded",
            "claim_by_code_possible",
            "cap_override",
        ):
            _check_bool(InvalidRewardFacts, getattr(self, name), name)
        self._check_hazard_level()
        _check_fen(InvalidRewardFacts, self.penalty_fen, "penalty_fen", optional=True)
        _check_fen(InvalidRewardFacts, self.paid_for_this_report_fen, "paid_for_this_report_fen")
        _check_fen(InvalidRewardFacts, self.discretionary_fen, "discretionary_fen", optional=True)
        self._check_deaths()
        if self.category is not None and (not isinstance(self.category, str) or not self.category.strip()):
            raise InvalidRewardFacts(f"category 必须是行业领域代码，收到 {self.category!r}", field="category")
        if not isinstance(self.paid_in_period_fen, Mapping):
            raise InvalidRewardFacts("paid_in_period_fen 必须是 上限键 → 金额 的映射", field="paid_in_period_fen")
        for key, amount in self.paid_in_period_fen.items():
            _check_fen(InvalidRewardFacts, amount, f"paid_in_period_fen[{key}]")
        _set(self, "paid_in_period_fen", MappingProxyType(dict(self.paid_in_period_fen)))
        for name in ("excluded_reason", "cap_override_reason"):
            if not isinstance(getattr(self, name), str):
                raise InvalidRewardFacts(f"{name} 必须是文字", field=name)
        if self.cap_override and not self.cap_override_reason.strip():
            raise CapOverrideReasonRequired(field="cap_override_reason")

    def _check_hazard_level(self) -> None:
        level = self.hazard_level
        if level is None:
            return
        if level not in _HAZARD_LEVEL_KINDS:
            raise InvalidRewardFacts(f"hazard_level 必须是 general 或 major，收到 {level!r}", field="hazard_level")
        implied = _HAZARD_LEVEL_KINDS[level]
        if self.case_kind in _HAZARD_LEVEL_KINDS.values() and self.case_kind is not implied:
            raise InvalidRewardFacts(
                f"核查认定为{implied.label}，与举报奖励类别“{self.case_kind.label}”不一致", field="hazard_level"
            )

    def _check_deaths(self) -> None:
        if not _is_int(self.concealed_deaths) or not 0 <= self.concealed_deaths <= MAX_DEATHS:
            raise InvalidRewardFacts(
                f"瞒报死亡人数必须是 0–{MAX_DEATHS} 之间的整数，收到 {self.concealed_deaths!r}",
                field="concealed_deaths",
            )
        if self.accident_level is not None:
            _set(
                self, "accident_level", _enum(InvalidRewardFacts, AccidentLevel, self.accident_level, "accident_level")
            )
        if self.concealed_deaths and self.accident_level is None:
            raise InvalidRewardFacts("有瞒报谎报死亡人数时必须填写最终认定的事故等级", field="accident_level")
        if self.concealed_deaths and self.case_kind is not CaseKind.CONCEALED_ACCIDENT:
            raise InvalidRewardFacts("只有瞒报谎报事故才有瞒报死亡人数", field="concealed_deaths")


@dataclass(frozen=True)
class ExplanationLine:
    code: LineCode
    text: str
    running_fen: int


@dataclass(frozen=True)
class RewardDecision:
    """``amount_fen``: to pay at this stage. ``total_fen``: the report's whole reward over all stages (after the
    per-report cap, before per-reporter caps; None when not known yet). ``awaiting_penalty``: eligible, but the
    amount depends on a penalty decision not yet made."""

    amount_fen: int
    eligible: bool
    lines: tuple[ExplanationLine, ...]
    policy_code: str
    policy_version: int
    stage: Stage
    total_fen: int | None
    awaiting_penalty: bool = False
    claim_window_days: int = DEFAULT_CLAIM_WINDOW_DAYS

    @property
    def reasons(self) -> tuple[LineCode, ...]:
        """The codes of the reasons the reporter is not eligible (empty when eligible)."""
        return tuple(line.code for line in self.lines if line.code in INELIGIBLE_CODES)

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


# --- evaluation ------------------------------------------------------------------------------------------------


class _Explanation:
    def __init__(self) -> None:
        self.lines: list[ExplanationLine] = []

    def add(self, code: LineCode, text: str, running_fen: int) -> int:
        self.lines.append(ExplanationLine(code, text, running_fen))
        return running_fen


def _refusals(policy: RewardPolicy, facts: RewardFacts) -> list[tuple[LineCode, str]]:
    refusals: list[tuple[LineCode, str]] = []
    if facts.verification is VerificationOutcome.FALSE:
        refusals.append((LineCode.VERIFICATION_FALSE, "核查不属实，不予奖励"))
    if not facts.first_reporter:
        refusals.append((LineCode.NOT_FIRST_REPORTER, "同一事项已有更早的有效举报，只奖励最先举报人，本举报不予奖励"))
    if facts.is_regulator_staff_or_relative and Exclusion.REGULATOR_STAFF_OR_RELATIVE in policy.exclusions:
        refusals.append((LineCode.REGULATOR_STAFF, "举报人为负有安全生产监管职责的工作人员或其近亲属，不在奖励之列"))
    if facts.excluded and Exclusion.FLAGGED in policy.exclusions:
        reason = f"（{facts.excluded_reason.strip()}）" if facts.excluded_reason.strip() else ""
        refusals.append((LineCode.EXCLUDED, f"举报人属于本政策不予奖励的情形{reason}"))
    if facts.anonymous and policy.anonymous is AnonymousPolicy.NO_REWARD:
        refusals.append((LineCode.ANONYMOUS_NOT_REWARDED, "匿名举报：本政策只奖励实名举报人"))
    if facts.anonymous and policy.anonymous is AnonymousPolicy.CLAIM_BY_CODE and not facts.claim_by_code_possible:
        refusals.append((LineCode.ANONYMOUS_WITHOUT_CODE, "匿名举报且未设置查询码，无法凭举报编号和查询码领奖"))
    rule = policy.rules.get(facts.case_kind)
    if rule is None:
        refusals.append((LineCode.CASE_KIND_NOT_COVERED, f"本政策未规定{facts.case_kind.label}举报的奖励，不予奖励"))
    elif facts.category is not None and facts.category in rule.excluded_categories:
        refusals.append(
            (LineCode.CATEGORY_NOT_COVERED, f"{facts.case_kind.label}的奖励条款不适用于“{facts.category}”类举报")
        )
    return refusals


def _clamp(amount: int, rule: RangeRule | PercentOfPenaltyRule | PerConcealedDeathRule, out: _Explanation) -> int:
    if amount < rule.minimum_fen:
        return out.add(
            LineCode.RAISED_TO_MINIMUM,
            f"低于最低 {format_yuan(rule.minimum_fen)}，按 {format_fen(rule.minimum_fen)}",
            rule.minimum_fen,
        )
    maximum = rule.maximum_fen
    if maximum is not None and amount > maximum:
        return out.add(
            LineCode.LOWERED_TO_MAXIMUM, f"高于最高 {format_yuan(maximum)}，按 {format_fen(maximum)}", maximum
        )
    return amount


def _rule_amount(rule: RewardRule, facts: RewardFacts, out: _Explanation) -> int | None:
    """The rule's amount before uplift; None when it needs a penalty decision that has not been made yet."""
    kind = facts.case_kind.label
    if not isinstance(rule, RangeRule) and facts.discretionary_fen is not None:
        raise DiscretionaryAmountNotApplicable(field="discretionary_fen")
    if isinstance(rule, FixedRule):
        return out.add(
            LineCode.FIXED,
            f"{kind}每宗奖励 {format_yuan(rule.amount_fen)}：{format_fen(rule.amount_fen)}",
            rule.amount_fen,
        )
    if isinstance(rule, RangeRule):
        return _range_amount(rule, facts, out)
    if isinstance(rule, PercentOfPenaltyRule):
        return _percent_amount(rule, facts, out)
    return _death_amount(rule, facts, out)


def _range_amount(rule: RangeRule, facts: RewardFacts, out: _Explanation) -> int:
    pick = facts.discretionary_fen
    bounds = f"{format_yuan(rule.min_fen)}–{format_yuan(rule.max_fen)}"
    if pick is None:
        raise DiscretionaryAmountRequired(
            f"{facts.case_kind.label}的奖励为 {bounds}，请填写酌定金额", field="discretionary_fen"
        )
    if not rule.min_fen <= pick <= rule.max_fen:
        raise DiscretionaryAmountOutOfRange(
            f"酌定金额 {format_yuan(pick)} 不在 {bounds} 之间",
            field="discretionary_fen",
            min_fen=rule.min_fen,
            max_fen=rule.max_fen,
        )
    text = f"{facts.case_kind.label}奖励 {bounds}，承办部门酌定 {format_yuan(pick)}：{format_fen(pick)}"
    return out.add(LineCode.RANGE, text, pick)


def _percent_amount(rule: PercentOfPenaltyRule, facts: RewardFacts, out: _Explanation) -> int | None:
    if facts.penalty_fen is None:
        if facts.stage is Stage.PENALTY:
            raise PenaltyRequired(field="penalty_fen")
        out.add(
            LineCode.AWAITING_PENALTY,
            f"尚未作出行政处罚决定：{facts.case_kind.label}按处罚金额的 {format_rate(rule.rate_bp)} 计奖，"
            "待处罚决定后核定，本阶段 0 分",
            0,
        )
        return None
    amount, arithmetic = _rate_line(facts.penalty_fen, rule.rate_bp)
    out.add(LineCode.PERCENT, f"按处罚金额 {arithmetic}", amount)
    return _clamp(amount, rule, out)


def _death_amount(rule: PerConcealedDeathRule, facts: RewardFacts, out: _Explanation) -> int:
    if facts.concealed_deaths == 0 or facts.accident_level is None:
        return out.add(LineCode.PER_DEATH, "未查实瞒报谎报死亡人数，按人数计奖为 0 分", 0)
    per_death = rule.per_death_fen[facts.accident_level]
    amount = per_death * facts.concealed_deaths
    text = (
        f"瞒报谎报{facts.accident_level.label}，查实死亡 {facts.concealed_deaths} 人 × 每人 {format_yuan(per_death)}"
        f" = {format_fen(amount)}"
    )
    out.add(LineCode.PER_DEATH, text, amount)
    return _clamp(amount, rule, out)


def _with_uplift(policy: RewardPolicy, facts: RewardFacts, amount: int, out: _Explanation) -> int:
    uplift = policy.employee_uplift
    if uplift is None or not facts.is_employee_of_unit or amount == 0:
        return amount
    raw = apply_rate(amount, uplift.rate_bp)
    extra, note = raw, ""
    if raw < uplift.min_uplift_fen:
        extra = uplift.min_uplift_fen
        note = f" {format_fen(raw)}，低于最低上浮 {format_yuan(uplift.min_uplift_fen)}，按"
    elif uplift.max_uplift_fen is not None and raw > uplift.max_uplift_fen:
        extra = uplift.max_uplift_fen
        note = f" {format_fen(raw)}，高于上浮上限 {format_yuan(uplift.max_uplift_fen)}，按"
    text = f"从业人员举报本单位上浮 {format_rate(uplift.rate_bp)}{note}：+{format_fen(extra)}"
    return out.add(LineCode.EMPLOYEE_UPLIFT, text, amount + extra)


def _with_report_cap(policy: RewardPolicy, facts: RewardFacts, amount: int, out: _Explanation) -> int:
    cap = policy.per_report_cap_fen
    if facts.cap_override and not policy.cap_override_allowed:
        raise CapOverrideNotAllowed(field="cap_override")
    if cap is None:
        return amount
    if amount <= cap:
        if facts.cap_override:
            out.add(
                LineCode.CAP_OVERRIDE_UNUSED, f"已申请突破单笔上限，但未超过上限 {format_yuan(cap)}，无需突破", amount
            )
        return amount
    if facts.cap_override:
        text = f"超过单笔奖励上限 {format_yuan(cap)}，经批准突破（理由：{facts.cap_override_reason.strip()}），按 "
        return out.add(LineCode.CAP_OVERRIDDEN, text + format_fen(amount), amount)
    return out.add(LineCode.PER_REPORT_CAP, f"超过单笔奖励上限 {format_yuan(cap)}，核减为 {format_fen(cap)}", cap)


def _stage_amount(policy: RewardPolicy, facts: RewardFacts, total: int, out: _Explanation) -> int:
    target = total
    share = policy.verification_share_bp
    if share is not None and facts.stage is Stage.VERIFICATION:
        target, arithmetic = _rate_line(total, share)
        out.add(LineCode.STAGE_SHARE, f"分两段发放，核实阶段发放 {format_rate(share)}：{arithmetic}", target)
    elif share is not None:
        out.add(LineCode.STAGE_SHARE, f"分两段发放，处罚决定后补足全额 {format_fen(total)}", total)
    paid = facts.paid_for_this_report_fen
    if paid == 0:
        return target
    if paid >= target:
        text = f"本举报已发放 {format_fen(paid)}，不少于本阶段应发 {format_fen(target)}，本次 0 分"
        return out.add(LineCode.ALREADY_PAID, text, 0)
    return out.add(
        LineCode.ALREADY_PAID, f"扣除本举报已发放 {format_fen(paid)}：{format_fen(target - paid)}", target - paid
    )


def _with_reporter_caps(policy: RewardPolicy, facts: RewardFacts, amount: int, out: _Explanation) -> int:
    for cap in policy.reporter_caps_for(facts.case_kind, facts.category):
        if cap.key not in facts.paid_in_period_fen:
            raise PaidInPeriodRequired(
                f"缺少举报人{_PERIOD_LABELS[cap.period]}（{cap.scope_label}）已获奖励金额（键 {cap.key}）",
                field="paid_in_period_fen",
                key=cap.key,
            )
        paid = facts.paid_in_period_fen[cap.key]
        room = max(cap.limit_fen - paid, 0)
        if amount <= room:
            continue
        period = _PERIOD_LABELS[cap.period]
        amount = out.add(
            LineCode.REPORTER_CAP,
            f"超过{period}奖励上限 {format_yuan(cap.limit_fen)}（{cap.scope_label}，{period}已奖励 "
            f"{format_fen(paid)}），核减为 {format_fen(room)}",
            room,
        )
    return amount


def evaluate(policy: RewardPolicy, facts: RewardFacts) -> RewardDecision:
    """The reward for ``facts`` under ``policy`` at ``facts.stage``; see the module doc for the steps.

    Raises (422) when the proposal itself is incomplete or contradicts the policy: a range rule without a pick or
    with a pick outside the range, a pick for a rule that has none, the penalty stage of a percent rule without a
    penalty, an override the policy does not allow, a missing paid-in-period sum for a cap. An ineligible reporter
    is not an error: the decision says so, with the reasons.
    """
    out = _Explanation()
    out.add(
        LineCode.POLICY,
        f"适用政策：{policy.name}（{policy.code} 第 {policy.version} 版，{policy.effective_from.isoformat()} 起施行）",
        0,
    )

    def decision(amount: int, *, eligible: bool, total: int | None, awaiting: bool = False) -> RewardDecision:
        if not eligible:
            text = "不予奖励：0 分"
        elif awaiting:
            text = "本阶段应发 0 分，待处罚决定后核定奖励"
        else:
            text = f"应发奖励 {format_fen(amount)}（{format_yuan(amount)}）"
        out.add(LineCode.TOTAL, text, amount)
        return RewardDecision(
            amount_fen=amount,
            eligible=eligible,
            lines=tuple(out.lines),
            policy_code=policy.code,
            policy_version=policy.version,
            stage=facts.stage,
            total_fen=total,
            awaiting_penalty=awaiting,
            claim_window_days=policy.claim_window_days,
        )

    refusals = _refusals(policy, facts)
    if refusals:
        for code, text in refusals:
            out.add(code, text, 0)
        return decision(0, eligible=False, total=0)
    if facts.anonymous:
        out.add(LineCode.ANONYMOUS_CLAIM_BY_CODE, "匿名举报：举报人可凭举报编号和查询码领奖", 0)
    if facts.verification is VerificationOutcome.PARTLY_TRUE:
        out.add(LineCode.PARTLY_TRUE, "核查部分属实：按核实属实部分的处罚金额、死亡人数或酌定金额计奖", 0)
    base = _rule_amount(policy.rules[facts.case_kind], facts, out)
    if base is None:
        return decision(0, eligible=True, total=None, awaiting=True)
    total = _with_report_cap(policy, facts, _with_uplift(policy, facts, base, out), out)
    payable = _with_reporter_caps(policy, facts, _stage_amount(policy, facts, total, out), out)
    return decision(payable, eligible=True, total=total)


# --- choosing the policy ---------------------------------------------------------------------------------------


def applicable(policies: Iterable[RewardPolicy], jurisdiction_path: Sequence[str], on: date) -> RewardPolicy:
    """The policy in force on ``on`` for a case in ``jurisdiction_path`` (adcodes from the province down, as the
    routing decision records them). The deepest jurisdiction wins, then the later ``effective_from``, then the
    higher version; national policies are the fallback. Raises :class:`NoRewardPolicy` if none is in force and
    :class:`AmbiguousRewardPolicy` if two different policies tie."""
    if isinstance(on, datetime) or not isinstance(on, date):
        raise TypeError(f"on must be a date, not {type(on).__name__}")
    path = list(jurisdiction_path)
    depth = {adcode: index + 1 for index, adcode in enumerate(path)}

    def rank(policy: RewardPolicy) -> tuple[int, date, int]:
        scope = policy.jurisdiction_scope
        return (depth[scope] if scope is not None else 0, policy.effective_from, policy.version)

    candidates = [
        p for p in policies if p.in_force(on) and (p.jurisdiction_scope is None or p.jurisdiction_scope in depth)
    ]
    place = " > ".join(path) or "全国"
    if not candidates:
        raise NoRewardPolicy(
            f"{place} 在 {on.isoformat()} 没有生效的举报奖励政策", on=on.isoformat(), jurisdiction_path=path
        )
    best = max(candidates, key=rank)
    rivals = sorted({p.code for p in candidates if rank(p) == rank(best) and p != best})
    if rivals:
        raise AmbiguousRewardPolicy(
            f"{place} 在 {on.isoformat()} 同时适用政策 {best.code} 和 {'、'.join(rivals)}，请调整生效日期或版本",
            policies=[best.code, *rivals],
        )
    return best


# --- JSON form -------------------------------------------------------------------------------------------------

_RULE_KEYS: dict[RuleMode, tuple[str, ...]] = {
    mode: ("mode", *(f.name for f in fields(cls))) for mode, cls in _RULE_CLASSES.items()
}
_POLICY_KEYS = tuple(f.name for f in fields(RewardPolicy))
_CAP_KEYS = tuple(f.name for f in fields(ReporterCap))
_UPLIFT_KEYS = tuple(f.name for f in fields(EmployeeUplift))


def _rule_to_data(rule: RewardRule) -> dict[str, Any]:
    data: dict[str, Any] = {"mode": rule.mode.value}
    for f in fields(rule):
        value = getattr(rule, f.name)
        if f.name == "excluded_categories":
            value = sorted(value)
        elif f.name == "per_death_fen":
            value = {level.value: amount for level, amount in value.items()}
        data[f.name] = value
    return data


def policy_to_data(policy: RewardPolicy) -> dict[str, Any]:
    """The JSON-ready form that :func:`parse_policy` reads back to an equal policy."""
    return {
        "code": policy.code,
        "name": policy.name,
        "version": policy.version,
        "effective_from": policy.effective_from.isoformat(),
        "effective_to": policy.effective_to.isoformat() if policy.effective_to else None,
        "jurisdiction_scope": policy.jurisdiction_scope,
        "rules": {kind.value: _rule_to_data(rule) for kind, rule in policy.rules.items()},
        "per_report_cap_fen": policy.per_report_cap_fen,
        "cap_override_allowed": policy.cap_override_allowed,
        "reporter_caps": [
            {
                "period": cap.period.value,
                "limit_fen": cap.limit_fen,
                "case_kind": cap.case_kind.value if cap.case_kind else None,
                "category": cap.category,
            }
            for cap in policy.reporter_caps
        ],
        "employee_uplift": (
            {
                "rate_bp": policy.employee_uplift.rate_bp,
                "min_uplift_fen": policy.employee_uplift.min_uplift_fen,
                "max_uplift_fen": policy.employee_uplift.max_uplift_fen,
            }
            if policy.employee_uplift
            else None
        ),
        "verification_share_bp": policy.verification_share_bp,
        "exclusions": sorted(e.value for e in policy.exclusions),
        "anonymous": policy.anonymous.value,
        "claim_window_days": policy.claim_window_days,
        "sources": list(policy.sources),
    }


def _object(data: Any, where: str, allowed: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidRewardPolicy(f"{where or '奖励政策'} 必须是 JSON 对象", field=where or None)
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise InvalidRewardPolicy(f"{where or '奖励政策'} 中有未知字段：{'、'.join(unknown)}", field=name)
    return data


def _parse_date(value: Any, name: str) -> date:
    problem = f"{name} 必须是 YYYY-MM-DD 格式的有效日期，收到 {value!r}"
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise InvalidRewardPolicy(problem, field=name)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRewardPolicy(problem, field=name) from None


def _build(cls: type[Any], values: Mapping[str, Any], where: str) -> Any:
    """``cls(**values)``, with errors naming the field by its path in the JSON (``rules.major_hazard.rate_bp``)."""
    try:
        return cls(**values)
    except TypeError as error:  # a required key is missing
        missing = re.findall(r"'(\w+)'", str(error))
        raise InvalidRewardPolicy(
            f"{where or '奖励政策'} 缺少必填字段：{'、'.join(missing)}", field=where or None
        ) from None
    except InvalidRewardPolicy as error:
        if not where:
            raise
        path = f"{where}.{error.field}" if error.field else where
        raise InvalidRewardPolicy(f"{where}：{error.detail_message}", field=path, **error.details) from None


def _parse_rule(data: Any, where: str) -> RewardRule:
    if not isinstance(data, Mapping) or "mode" not in data:
        raise InvalidRewardPolicy(f"{where} 必须是带 mode 的 JSON 对象", field=where)
    mode = _enum(InvalidRewardPolicy, RuleMode, data["mode"], f"{where}.mode")
    values = dict(_object(data, where, _RULE_KEYS[mode]))
    del values["mode"]
    return _build(_RULE_CLASSES[mode], values, where)


def parse_policy(data: Mapping[str, Any]) -> RewardPolicy:
    """A policy from its JSON form (:func:`policy_to_data`). Unknown keys are refused at every level, so a typo
    such as ``"per_report_cap"`` cannot silently load a policy without a cap. Errors are
    :class:`InvalidRewardPolicy` naming the field."""
    values = dict(_object(data, "", _POLICY_KEYS))
    values["effective_from"] = _parse_date(values.get("effective_from"), "effective_from")
    if values.get("effective_to") is not None:
        values["effective_to"] = _parse_date(values["effective_to"], "effective_to")
    rules = values.get("rules")
    if not isinstance(rules, Mapping):
        raise InvalidRewardPolicy("rules 必须是 举报类别 → 规则 的对象", field="rules")
    values["rules"] = {kind: _parse_rule(rule, f"rules.{kind}") for kind, rule in rules.items()}
    caps = values.get("reporter_caps", [])
    if not isinstance(caps, list):
        raise InvalidRewardPolicy("reporter_caps 必须是列表", field="reporter_caps")
    values["reporter_caps"] = tuple(
        _build(ReporterCap, _object(cap, f"reporter_caps[{i}]", _CAP_KEYS), f"reporter_caps[{i}]")
        for i, cap in enumerate(caps)
    )
    if values.get("employee_uplift") is not None:
        uplift = _object(values["employee_uplift"], "employee_uplift", _UPLIFT_KEYS)
        values["employee_uplift"] = _build(EmployeeUplift, uplift, "employee_uplift")
    for key in ("exclusions", "sources"):
        if key in values and not isinstance(values[key], list):
            raise InvalidRewardPolicy(f"{key} 必须是列表", field=key)
    return _build(RewardPolicy, values, "")


# --- built-in policies -----------------------------------------------------------------------------------------

_YUAN = 100

NATIONAL_2018_SOURCES = (
    "安监总财〔2018〕19号《安全生产领域举报奖励办法》",
    "http://isofans.com/thread-1561773-1-1.html",
    "http://news.gscn.com.cn/system/2018/01/31/011899925.shtml",
    "http://yndcaqjs.com/show.asp?id=1400",
    "http://jl.sina.com.cn/news/s/2019-06-14/detail-ihvhiews8735740.shtml",
    "http://zjhxpxh.org.cn/?id=10154&mod=newsdat",
)


def _per_death(general: int, larger: int, major: int, especially_major: int) -> dict[AccidentLevel, int]:
    return {
        AccidentLevel.GENERAL: general * _YUAN,
        AccidentLevel.LARGER: larger * _YUAN,
        AccidentLevel.MAJOR: major * _YUAN,
        AccidentLevel.ESPECIALLY_MAJOR: especially_major * _YUAN,
    }


def national_2018() -> RewardPolicy:
    """安监总财〔2018〕19号《安全生产领域举报奖励办法》, issued 2018-01-04 by 国家安全监管总局 and 财政部.

    - 重大事故隐患 and 违法生产经营建设: 15% of the administrative penalty, at least 3,000 元, at most 300,000 元.
    - 瞒报谎报事故: 30,000 / 40,000 / 50,000 / 60,000 元 per confirmed concealed death for a 一般 / 较大 / 重大 /
      特别重大 accident, at most 300,000 元.
    - 一般事故隐患: not covered (the national scheme rewards only the two kinds above).
    - Only the first real-name reporter (有功的实名举报人); regulator staff and their relatives are not rewarded
      (wording ⚠️ uncertain in the research); claim within 60 days of the notice.

    Effective date: the issue date; that it took effect on issue ("自印发之日起施行") is ⚠️ not confirmed by a
    readable text. Sources: :data:`NATIONAL_2018_SOURCES` (five reposts agree on the amounts).
    """
    percent = PercentOfPenaltyRule(rate_bp=1500, min_fen=3_000 * _YUAN, max_fen=300_000 * _YUAN)
    return RewardPolicy(
        code="national-2018",
        name="安全生产领域举报奖励办法（安监总财〔2018〕19号）",
        version=1,
        effective_from=date(2018, 1, 4),
        rules={
            CaseKind.MAJOR_HAZARD: percent,
            CaseKind.ILLEGAL_PRODUCTION: percent,
            CaseKind.CONCEALED_ACCIDENT: PerConcealedDeathRule(
                per_death_fen=_per_death(30_000, 40_000, 50_000, 60_000), cap_fen=300_000 * _YUAN
            ),
        },
        per_report_cap_fen=300_000 * _YUAN,
        anonymous=AnonymousPolicy.NO_REWARD,
        claim_window_days=60,
        sources=NATIONAL_2018_SOURCES,
    )


SHANDONG_2019_SOURCES = (
    "山东省应急管理厅 山东省财政厅《山东省安全生产举报奖励办法》（2019）",
    "https://yybnet.net/shandong/news/201906/9152553.html",
    "http://sdtzsb.net/mobile.php/News/view/id/3994.html",
    "https://www.lvshuolvda.com/flwd/752452.html",
)
SHANDONG_ADCODE = "370000"
FIRE_SAFETY_CATEGORY = "fire_safety"


def shandong_2019() -> RewardPolicy:
    """山东省安全生产举报奖励办法 (2019, 省应急厅 and 省财政厅; 新华社 reported it in force on 2019-06-01).

    - 一般事故隐患: 500–5,000 元, the department picks.
    - 重大事故隐患 and 非法违法行为: 50% of the penalty, at least 5,000 元, at most 500,000 元.
    - 瞒报谎报事故: 3/4/5/6 万元 per death by level, at most 500,000 元.
    - "火灾隐患奖励不适用本款": the hazard rules do not apply to the ``fire_safety`` category (fire hazards are
      rewarded under the fire brigade's own scheme); the concealed-accident rule is a separate paragraph.
    - Real-name reporters only (有功的实名举报人).

    Not modelled: the fixed tiers of 500,000 / 300,000 / 100,000 元 for listed situations and the 2022 标准 of 301
    situations (a department can still pick within the range where one applies). ⚠️ The exact effective date is not
    known: 2019-06-01 is the date of the 新华社 report that it "日前正式印发实施". The 2025 revision
    (鲁应急发〔2025〕12号, 2025-12-25, http://sdjlxh.com/?S_id=4265&type=newsinfo) has amounts not yet read; load it
    as a new policy from its effective date and it supersedes this one for later dates.
    Sources: :data:`SHANDONG_2019_SOURCES`.
    """
    no_fire = frozenset({FIRE_SAFETY_CATEGORY})
    percent = PercentOfPenaltyRule(
        rate_bp=5000, min_fen=5_000 * _YUAN, max_fen=500_000 * _YUAN, excluded_categories=no_fire
    )
    return RewardPolicy(
        code="shandong-2019",
        name="山东省安全生产举报奖励办法（2019）",
        version=1,
        effective_from=date(2019, 6, 1),
        jurisdiction_scope=SHANDONG_ADCODE,
        rules={
            CaseKind.GENERAL_HAZARD: RangeRule(min_fen=500 * _YUAN, max_fen=5_000 * _YUAN, excluded_categories=no_fire),
            CaseKind.MAJOR_HAZARD: percent,
            CaseKind.ILLEGAL_PRODUCTION: percent,
            CaseKind.CONCEALED_ACCIDENT: PerConcealedDeathRule(
                per_death_fen=_per_death(30_000, 40_000, 50_000, 60_000), cap_fen=500_000 * _YUAN
            ),
        },
        per_report_cap_fen=500_000 * _YUAN,
        anonymous=AnonymousPolicy.NO_REWARD,
        sources=SHANDONG_2019_SOURCES,
    )


SHENZHEN_SOURCES = (
    "《深圳市安全生产领域举报处理办法》（深应急规〔2019〕1号 及其后修订）",
    "https://yjgl.sz.gov.cn/zwgk/xxgkml/qt/gzdt/content/post_11954679.html",
    "https://www.dutenews.com/n/article/8588630",
    "http://www.szthemson.com/news/770.html",
)
SHENZHEN_ADCODE = "440300"


def shenzhen() -> RewardPolicy:
    """深圳市安全生产领域举报处理办法, as the city's 应急管理局 summarised it on 2025-01-11.

    - 一般事故隐患 (and 一般违法行为): 500 元 per verified report.
    - 重大事故隐患 and 违法生产经营建设: 15% of the penalty, at least 3,000 元; 300,000 元 per report, which may be
      exceeded for a report that removed a hazard of 群死群伤 (override with a reason).
    - 瞒报谎报事故: 3/4/5/6 万元 per death by level, under the same per-report cap.
    - Real-name only: "匿名举报或不提供有效联系方式的，受理核实后不予发放奖励".

    Not modelled: the special amount for a 重大隐患 that is not punishable (truncated in the source), and 一般违法
    at 500 元 (our case kinds do not separate general from serious violations; 非法违法生产经营 takes the 15%
    rule). ⚠️ effective_from is the date of the city's summary page, not a confirmed effective date of the version
    it describes (the 2019 text is 深应急规〔2019〕1号); correct it before relying on it for earlier reports.
    Sources: :data:`SHENZHEN_SOURCES`.
    """
    percent = PercentOfPenaltyRule(rate_bp=1500, min_fen=3_000 * _YUAN)
    return RewardPolicy(
        code="shenzhen",
        name="深圳市安全生产领域举报处理办法",
        version=1,
        effective_from=date(2025, 1, 11),
        jurisdiction_scope=SHENZHEN_ADCODE,
        rules={
            CaseKind.GENERAL_HAZARD: FixedRule(amount_fen=500 * _YUAN),
            CaseKind.MAJOR_HAZARD: percent,
            CaseKind.ILLEGAL_PRODUCTION: percent,
            CaseKind.CONCEALED_ACCIDENT: PerConcealedDeathRule(
                per_death_fen=_per_death(30_000, 40_000, 50_000, 60_000)
            ),
        },
        per_report_cap_fen=300_000 * _YUAN,
        cap_override_allowed=True,
        anonymous=AnonymousPolicy.NO_REWARD,
        sources=SHENZHEN_SOURCES,
    )


def builtin_policies() -> tuple[RewardPolicy, ...]:
    return (national_2018(), shandong_2019(), shenzhen())
