from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.core.validation import WholeNumber
from app.intake.schemas import CategoryRef, Enterprise, HazardKind, Location, PhotoView, multiline_text
from app.routing.schemas import DecisionView
from app.workflow.transitions import VerificationOutcome

Reason = Annotated[str, AfterValidator(multiline_text), Field(min_length=2, max_length=500)]


class DepartmentRef(BaseModel):
    id: uuid.UUID
    name: str


class CaseView(BaseModel):
    """A report as staff see it: never who made it."""

    id: uuid.UUID
    number: str
    state: str
    category: CategoryRef
    hazard_kind: HazardKind
    description: str
    location: Location
    observed_at: datetime
    submitted_at: datetime
    channel: str
    enterprise: Enterprise | None
    department: DepartmentRef | None = Field(description="当前承办部门；为空表示在安委办待分派队列")
    jurisdiction_adcode: str | None
    photos: list[PhotoView]
    routing: list[DecisionView] = Field(description="分派记录：提交时的自动分派及此后的改派、退回，附理由")
    state_label: str = ""
    allowed_commands: list[str] = Field(default_factory=list, description="当前登录者现在可执行的命令")
    deadlines: list[DeadlineView] = Field(default_factory=list)
    verification: VerificationView | None = None
    rectifications: list[RectificationView] = Field(default_factory=list)
    # Shown to dispatchers only: dispatch aids that could help identify a whistleblower if they reached the unit.
    reporter_is_employee: bool | None = None
    flags: list[dict[str, Any]] | None = None
    duplicates: list[DuplicateView] | None = None
    merge_group: list[GroupMember] | None = Field(
        default=None, description="合并组（主案件及合并进来的举报），按提交时间排序；第一个为首报人"
    )
    contact: MaskedContact | None = None


class CaseSummary(BaseModel):
    id: uuid.UUID
    number: str
    category: CategoryRef
    submitted_at: datetime
    department: DepartmentRef | None
    routing_reason: str
    routing_explanation: str
    ambiguous: bool


class CasePage(BaseModel):
    items: list[CaseSummary]
    next_cursor: str | None


class RerouteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str | None = Field(
        default=None, min_length=1, max_length=40, description="改正行业领域（将按规则重新分派）"
    )
    department_code: str | None = Field(default=None, min_length=1, max_length=64, description="直接指定承办部门")
    reason: Reason


# --- commands ------------------------------------------------------------------------------------------------------

Note = Annotated[str, AfterValidator(multiline_text), Field(max_length=1000)]
UploadIds = Annotated[list[uuid.UUID], Field(max_length=9)]


class RejectionReason(StrEnum):
    DUPLICATE_OF_ACCEPTED = "duplicate_of_accepted"
    NOT_SAFETY_MATTER = "not_safety_matter"
    FACTS_UNCLEAR = "facts_unclear"
    OUTSIDE_JURISDICTION = "outside_jurisdiction"
    UNDER_INVESTIGATION = "under_investigation"


REJECTION_LABELS = {
    RejectionReason.DUPLICATE_OF_ACCEPTED: "与已受理的举报重复",
    RejectionReason.NOT_SAFETY_MATTER: "不属于安全生产事项",
    RejectionReason.FACTS_UNCLEAR: "举报事实不清，无法核查",
    RejectionReason.OUTSIDE_JURISDICTION: "不属于本地管辖",
    RejectionReason.UNDER_INVESTIGATION: "该事项已在查处中",
}


class HazardLevel(StrEnum):
    GENERAL = "general"  # 一般事故隐患
    MAJOR = "major"  # 重大事故隐患


class PenaltyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    penalty_fen: Annotated[int, WholeNumber] = Field(
        ge=0, le=10**12, strict=True, description="行政处罚金额（分）；0 表示决定不予罚款"
    )
    decision_number: Annotated[str, AfterValidator(multiline_text), Field(min_length=2, max_length=100)] = Field(
        description="行政处罚决定书文号"
    )
    note: Note | None = None


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note | None = None


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: RejectionReason
    note: Note | None = None
    refer_to: Annotated[str, AfterValidator(multiline_text), Field(max_length=200)] | None = Field(
        default=None, description="不属于本地管辖时：应向何处举报"
    )
    duplicate_of: str | None = Field(default=None, max_length=32, description="重复时：已受理举报的编号")


class MergeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    primary_id: uuid.UUID
    note: Note | None = None


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department_code: str | None = Field(default=None, max_length=64, description="为空时转办给路由建议的部门")
    note: Note | None = None


class VerifyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: VerificationOutcome
    hazard_level: HazardLevel | None = Field(default=None, description="属实或部分属实时必填：一般 / 重大")
    enterprise: Enterprise | None = None
    # The constraints inside, before the validator: on the union they reached the schema as "ge", not "minimum".
    penalty_fen: Annotated[int, Field(ge=0, le=10**12, strict=True), WholeNumber] | None = Field(
        default=None, description="行政处罚金额（分）"
    )
    standard_items: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=50, description="判定依据的标准条款"
    )
    findings: Annotated[str, AfterValidator(multiline_text), Field(min_length=2, max_length=4000)]
    attachments: UploadIds = Field(default_factory=list, description="现场核查照片（先上传）")


class OrderRectificationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    measures: Annotated[str, AfterValidator(multiline_text), Field(min_length=2, max_length=2000)]
    # The constraints inside, before the validator: on the union they reached the schema as "ge", not "minimum".
    deadline_days: Annotated[int, Field(ge=1, le=365, strict=True), WholeNumber] | None = Field(
        default=None, description="整改期限（日历日）"
    )


class ReportRectifiedBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after_photos: UploadIds = Field(description="整改后照片（先上传），至少一张")
    note: Note | None = None


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    passed: bool = Field(strict=True)
    note: Note | None = None


class ExtensionRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: Annotated[int, WholeNumber] = Field(ge=1, le=30, strict=True)
    reason: Reason = Field(description="延期理由，将告知举报人")


class AppealBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason


class RatingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    score: Annotated[int, WholeNumber] = Field(ge=1, le=5, strict=True)
    comment: Annotated[str, AfterValidator(multiline_text), Field(max_length=500)] | None = None


class EventView(BaseModel):
    sequence: int
    command: str
    from_state: str
    to_state: str
    actor_role: str | None
    note: str | None
    payload: dict[str, Any]
    attachments: list[str]
    at: datetime


class CommandResult(BaseModel):
    case_id: uuid.UUID
    state: str
    event: EventView


class ReporterTimelineEntry(BaseModel):
    label: str
    detail: str | None
    at: datetime


class DeadlineView(BaseModel):
    step: str
    due_at: datetime
    provisional: bool
    days: int
    count: str
    extended_days: int
    extension_reason: str | None
    met_at: datetime | None
    overdue: bool


class VerificationView(BaseModel):
    outcome: str
    hazard_level: str | None
    enterprise_name: str | None
    enterprise_credit_code: str | None
    penalty_fen: int | None
    standard_items: list[str]
    findings: str
    verified_at: datetime


class RectificationView(BaseModel):
    round: int
    measures: str
    due_at: datetime
    due_provisional: bool
    ordered_at: datetime
    reported_at: datetime | None
    after_photo_ids: list[str]
    reviewed_at: datetime | None
    passed: bool | None
    review_note: str | None


class DuplicateView(BaseModel):
    case_id: uuid.UUID
    number: str
    state: str
    distance_m: float | None
    same_photo: bool
    similar_photo: bool
    submitted_at: datetime


class GroupMember(BaseModel):
    case_id: uuid.UUID
    number: str
    submitted_at: datetime
    primary: bool
    first_reporter: bool = Field(description="最先提交：奖励只给首报人")


class MaskedContact(BaseModel):
    """What a dispatcher sees of who reported: masked, and nothing at all for an anonymous report."""

    anonymous: bool
    channel_account: bool = Field(description="由小程序账号提交（可通过订阅消息联系）")
    name: str | None = None
    phone: str | None = None


class RevealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason = Field(description="查看举报人身份的理由，将记入审计日志")


class RevealedIdentity(BaseModel):
    case_id: uuid.UUID
    name: str | None
    phone: str | None
    openid: str | None
    revealed_at: datetime


class QueueFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: list[str] | None = None
    category: str | None = None
    jurisdiction: str | None = None
    department_id: uuid.UUID | None = None
    overdue: bool | None = None
    submitted_from: datetime | None = None
    submitted_to: datetime | None = None
    flag: str | None = None
    mine: bool = False


class QueueItem(BaseModel):
    id: uuid.UUID
    number: str
    state: str
    category: CategoryRef
    department: DepartmentRef | None
    jurisdiction_adcode: str | None
    submitted_at: datetime
    next_due_at: datetime | None
    overdue: bool
    flags: list[str]


class QueuePage(BaseModel):
    items: list[QueueItem]
    next_cursor: str | None
    counts: dict[str, int] = Field(description="符合其余筛选条件的在办案件按状态计数（已办结、不予受理、已合并的不计）")


class AuditEntryView(BaseModel):
    id: uuid.UUID
    actor_id: str
    actor_role: str | None
    action: str
    target_type: str
    target_id: str
    reason: str | None
    detail: dict[str, Any]
    at: datetime


class AuditPage(BaseModel):
    items: list[AuditEntryView]
    next_cursor: str | None


# The calendar's parser reads the dates (and says which one is wrong, in its own code); the schema states their form.
IsoDateText = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", json_schema_extra={"format": "date"})]


class YearScheduleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    year: Annotated[int, WholeNumber] = Field(ge=2000, le=2100, strict=True)
    holidays: list[IsoDateText] = Field(
        max_length=60, json_schema_extra={"uniqueItems": True}, description="法定节假日（含周末）YYYY-MM-DD"
    )
    workdays: list[IsoDateText] = Field(
        max_length=20, json_schema_extra={"uniqueItems": True}, description="调休上班的周末 YYYY-MM-DD"
    )


class YearScheduleResult(BaseModel):
    year: int
    recomputed_deadlines: int


class ReporterStatus(BaseModel):
    state: str
    label: str
