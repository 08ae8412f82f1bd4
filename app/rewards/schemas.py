from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.core.validation import WholeNumber
from app.intake.schemas import multiline_text
from app.rewards.channels import ChannelCode
from app.rewards.policy import AccidentLevel
from app.workflow.schemas import DepartmentRef

STRICT = ConfigDict(extra="forbid")
Text = Annotated[str, AfterValidator(multiline_text)]
Reason = Annotated[str, AfterValidator(multiline_text), Field(min_length=2, max_length=500)]


# --- commands ------------------------------------------------------------------------------------------------------


class ConfirmBody(BaseModel):
    """What only the accepting department knows. Everything is optional: the system's proposal already holds the
    facts on file (the verification, the merge group, the employee flag)."""

    model_config = STRICT
    # The constraints inside, before the validator: on the union they reached the schema as "ge", not "minimum".
    discretionary_fen: Annotated[int, Field(ge=0, le=10**12, strict=True), WholeNumber] | None = Field(
        default=None, description="区间奖励的酌定金额（分）"
    )
    concealed_deaths: Annotated[int, WholeNumber] = Field(
        default=0, ge=0, le=100_000, strict=True, description="查实的瞒报死亡人数"
    )
    accident_level: AccidentLevel | None = Field(default=None, description="瞒报事故最终认定的等级")
    employee_of_unit: bool | None = Field(default=None, description="核实举报人为本单位从业人员；空则沿用举报时的声明")
    regulator_staff_or_relative: bool = Field(default=False, description="举报人为负有安全监管职责的工作人员或其近亲属")
    excluded: bool = Field(default=False, description="举报人属于政策规定的其他不予奖励情形")
    excluded_reason: Annotated[Text, Field(max_length=200)] = ""
    cap_override: bool = Field(default=False, description="申请突破单笔奖励上限（政策允许时）")
    cap_override_reason: Annotated[Text, Field(max_length=500)] = ""
    note: Annotated[Text, Field(max_length=1000)] | None = None


class DecisionBody(BaseModel):
    model_config = STRICT
    note: Annotated[Text, Field(max_length=1000)] | None = None


class RejectRewardBody(BaseModel):
    model_config = STRICT
    reason: Reason


_ACCOUNT = re.compile(r"^\d{8,32}$")


def _account_number(value: str) -> str:
    digits = value.replace(" ", "")
    if not _ACCOUNT.fullmatch(digits):
        raise ValueError("收款账号应为 8–32 位数字")
    return digits


class PayeeBody(BaseModel):
    """The payee: collected only now, at the claim (data minimisation); encrypted at rest, masked on output."""

    model_config = STRICT
    real_name: Annotated[Text, Field(min_length=2, max_length=30)]
    id_number: str = Field(
        min_length=18, max_length=18, pattern=r"^[0-9]{17}[0-9Xx]$", description="18 位居民身份证号码（校验位会被核对）"
    )
    bank_name: Annotated[Text, Field(min_length=2, max_length=60)] = Field(description="开户银行")
    account_number: Annotated[str, AfterValidator(_account_number)] = Field(
        pattern=r"^ *(?:[0-9] *){8,32}$", description="收款账号（8–32 位数字，可含空格）"
    )


class ClaimByCodeBody(PayeeBody):
    number: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z-]+$", description="举报编号")
    query_code: str = Field(min_length=1, max_length=32, description="提交举报时获得的查询码")


class PayBody(BaseModel):
    model_config = STRICT
    channel: ChannelCode
    reference: str = Field(min_length=1, max_length=64, description="银行交易流水号、现金收据号或微信转账单号")
    paid_on: date = Field(description="付款日期")
    note: Annotated[Text, Field(max_length=1000)] | None = None


class ReversePaymentBody(BaseModel):
    model_config = STRICT
    reason: Reason


class AppealRewardBody(BaseModel):
    model_config = STRICT
    reason: Reason


class RevealPayeeBody(BaseModel):
    model_config = STRICT
    reason: Reason


# --- views ---------------------------------------------------------------------------------------------------------


class ExplanationLineView(BaseModel):
    code: str
    text: str
    running_fen: int


class PolicyRef(BaseModel):
    code: str
    version: int


class MaskedPayee(BaseModel):
    name: str | None
    id_number: str | None
    bank_name: str | None
    account_number: str | None


class PaymentView(BaseModel):
    id: uuid.UUID
    attempt: int
    out_bill_no: str
    channel: ChannelCode
    reference: str
    amount_fen: int
    status: str
    paid_on: date
    recorded_at: datetime
    reversed_at: datetime | None
    reversal_reason: str | None


class LedgerEntryView(BaseModel):
    id: uuid.UUID
    reward_id: uuid.UUID
    sequence: int
    kind: str
    account: str
    amount_fen: int
    case_id: uuid.UUID
    policy_id: uuid.UUID
    actor_id: str
    reverses_id: uuid.UUID | None
    note: str | None
    created_at: datetime


class BalanceView(BaseModel):
    approved_fen: int
    paid_fen: int
    outstanding_fen: int


class RewardSummary(BaseModel):
    id: uuid.UUID
    number: str
    case_id: uuid.UUID
    case_number: str
    stage: str
    state: str
    state_label: str
    department: DepartmentRef | None
    category_code: str
    case_kind: str
    policy: PolicyRef
    eligible: bool
    amount_fen: int | None = Field(description="当前核定金额（分）；空表示尚待承办部门填写")
    approved_fen: int | None
    created_at: datetime
    approved_at: datetime | None
    claim_deadline: datetime | None
    paid_at: datetime | None
    payee: MaskedPayee | None = Field(default=None, description="领奖人（脱敏），仅奖励审核员可见")


class RewardView(RewardSummary):
    beneficiary_report_number: str = Field(description="获奖举报（合并组中最先举报者）的编号")
    total_fen: int | None
    explanation: list[ExplanationLineView]
    inputs: dict[str, Any]
    confirmed_at: datetime | None
    decided_at: datetime | None
    decision_note: str | None
    claimed_at: datetime | None
    appeals_used: int
    appeal_reason: str | None
    balance: BalanceView
    payments: list[PaymentView]
    ledger: list[LedgerEntryView]
    allowed_commands: list[str]


class RewardPage(BaseModel):
    items: list[RewardSummary]
    next_cursor: str | None


class StateTotal(BaseModel):
    state: str
    count: int
    amount_fen: int


class RewardTotals(BaseModel):
    count: int
    amount_fen: int = Field(description="所选奖励当前核定金额之和（分）")
    approved_fen: int = Field(description="账目：核准净额（核准减逾期冲销）")
    paid_fen: int = Field(description="账目：发放净额（发放减冲正）")
    outstanding_fen: int
    by_state: list[StateTotal]


class LedgerPage(BaseModel):
    items: list[LedgerEntryView]
    next_cursor: str | None


class RevealedPayee(BaseModel):
    name: str
    id_number: str
    bank_name: str
    account_number: str


class ReporterReward(BaseModel):
    """A reward as its reporter sees it: no staff, no other reporter."""

    id: uuid.UUID
    number: str
    report_number: str
    stage: str
    state: str
    status_label: str
    amount_fen: int | None
    explanation: list[str]
    claim_deadline: datetime | None
    claimed_at: datetime | None
    paid_at: datetime | None
    can_claim: bool
    can_appeal: bool


class PolicyVersionView(BaseModel):
    id: uuid.UUID
    code: str
    version: int
    name: str
    effective_from: date
    effective_to: date | None
    jurisdiction_scope: str | None
    document: dict[str, Any]
    created_at: datetime
