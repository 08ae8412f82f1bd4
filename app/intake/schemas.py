from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
)
from pydantic_core import PydanticCustomError

from app.core.validation import control_characters, is_valid_credit_code
from app.geo.datum import Datum

# FastAPI validates bodies in Python mode, where model-wide strict mode would refuse ISO strings for datetimes and
# UUIDs; so unknown fields are refused model-wide and numbers and booleans are made strict field by field.
STRICT = ConfigDict(extra="forbid")
MAX_PHOTOS = 9


# Rules no schema can state (a character's Unicode category, a check character) carry their own error type in the
# details of a validation_error, so a caller, and the schemathesis check of what schema-valid input may be refused
# for (tests/support/schemathesis_checks.py), can tell them from a broken schema.
def plain_text(value: str) -> str:
    if control_characters(value, allow_newlines=False):
        raise PydanticCustomError("control_characters", "不能包含控制字符")
    return value.strip()


def multiline_text(value: str) -> str:
    if control_characters(value, allow_newlines=True):
        raise PydanticCustomError("control_characters", "不能包含控制字符")
    return value.strip()


def _iso_text(value: object) -> object:
    # Lax mode would take a bare number as a Unix timestamp; the mini-program always sends ISO 8601 text.
    if not isinstance(value, str):
        raise ValueError("时间必须是 ISO 8601 字符串")
    return value


PlainText = Annotated[str, AfterValidator(plain_text)]


class HazardKind(StrEnum):
    ACCIDENT_HAZARD = "accident_hazard"  # 事故隐患
    ILLEGAL_PRODUCTION = "illegal_production"  # 非法违法生产经营行为
    CONCEALED_ACCIDENT = "concealed_accident"  # 瞒报谎报事故


class Channel(StrEnum):
    MINIPROGRAM = "miniprogram"
    WEB = "web"
    HOTLINE = "hotline"
    LETTER = "letter"
    VISIT = "visit"
    PARTNER = "partner"  # another platform, through Open311 with its API key


REPORTER_CHANNELS = frozenset({Channel.MINIPROGRAM, Channel.WEB})
STAFF_CHANNELS = frozenset({Channel.HOTLINE, Channel.LETTER, Channel.VISIT})


class Location(BaseModel):
    model_config = STRICT
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False, strict=True)
    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False, strict=True)
    datum: Datum = Field(description="坐标系：wgs84（wx.getLocation 默认）或 gcj02（地图选点）")
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False, strict=True)
    address: Annotated[PlainText, Field(max_length=200)] | None = None


class Enterprise(BaseModel):
    model_config = STRICT
    name: Annotated[PlainText, Field(min_length=1, max_length=200)]
    credit_code: str | None = Field(
        default=None,
        pattern=r"^\s*[0-9A-HJ-NPQRTUWXYa-hj-npqrtuwxy]{18}\s*$",
        description="统一社会信用代码（18 位，校验位将被核验）",
    )

    @field_validator("credit_code")
    @classmethod
    def _check_credit_code(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().upper()
        if not is_valid_credit_code(value):
            raise PydanticCustomError("check_character", "统一社会信用代码格式或校验位不正确")
        return value


class Caller(BaseModel):
    """Who called the hotline or wrote the letter, if they gave it (staff-filed reports only)."""

    model_config = STRICT
    name: Annotated[PlainText, Field(max_length=50)] | None = None
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9\- ]{5,20}$")


class ReportSubmission(BaseModel):
    model_config = STRICT
    category: str = Field(min_length=1, max_length=40, description="行业领域代码，见 GET /v1/categories")
    hazard_kind: HazardKind
    description: Annotated[str, AfterValidator(multiline_text), Field(min_length=5, max_length=1000)]
    location: Location
    observed_at: Annotated[datetime, BeforeValidator(_iso_text)] = Field(description="发现时间，ISO 8601，含时区")
    upload_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_PHOTOS)
    enterprise: Enterprise | None = None
    reporter_is_employee: StrictBool = Field(default=False, description="我是被举报单位的从业人员")
    hide_identity: StrictBool = Field(default=False, description="匿名：对办理人员隐藏我的身份")
    channel: Channel = Channel.MINIPROGRAM
    caller: Caller | None = None

    @field_validator("upload_ids")
    @classmethod
    def _distinct(cls, value: list[uuid.UUID]) -> list[uuid.UUID]:
        if len(set(value)) != len(value):
            raise ValueError("照片不能重复")
        return value

    @field_validator("observed_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("时间必须带时区，例如 2026-11-22T09:30:00+08:00")
        return value


class PartnerReportSubmission(ReportSubmission):
    """A report a partner platform files through Open311: no photo uploads (the spec's ``media_url`` is refused)
    and the contact its user gave, if any, as the caller."""

    upload_ids: list[uuid.UUID] = Field(default_factory=list, max_length=0)
    channel: Channel = Channel.PARTNER


class ReportStatus(BaseModel):
    code: str
    label: str


class PhotoView(BaseModel):
    id: uuid.UUID
    display_url: str
    thumbnail_url: str
    width: int
    height: int


class CategoryRef(BaseModel):
    code: str
    name: str


class ReportReceipt(BaseModel):
    id: uuid.UUID
    number: str = Field(description="举报编号，可电话报读")
    query_code: str = Field(description="查询码，仅此一次显示，请妥善保存")
    status: ReportStatus
    submitted_at: datetime


class ReportSummary(BaseModel):
    id: uuid.UUID
    number: str
    category: CategoryRef
    hazard_kind: HazardKind
    status: ReportStatus
    submitted_at: datetime
    thumbnail_url: str | None
    handling_department: str | None = Field(description="承办部门名称；为空表示待安委办分派")


class ReportDetail(ReportSummary):
    description: str
    location: Location
    observed_at: datetime
    channel: Channel
    enterprise: Enterprise | None
    reporter_is_employee: bool
    hide_identity: bool
    photos: list[PhotoView]


class ReportPage(BaseModel):
    items: list[ReportSummary]
    next_cursor: str | None = Field(description="下一页游标；为空表示没有更多")


class ReportLookupRequest(BaseModel):
    model_config = STRICT
    number: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z-]+$")
    query_code: str = Field(min_length=1, max_length=32)


class ReportLookupResult(BaseModel):
    number: str
    category: CategoryRef
    hazard_kind: HazardKind
    status: ReportStatus
    submitted_at: datetime
    handling_department: str | None


class UploadView(BaseModel):
    id: uuid.UUID
    sha256: str
    format: str
    width: int
    height: int
    size_bytes: int
    display_url: str
    thumbnail_url: str
    attached: bool
    created_at: datetime
