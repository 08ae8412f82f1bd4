from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator

from app.intake.schemas import STRICT, CategoryRef, PlainText, multiline_text

MAX_PUBLIC_PHOTOS = 9


class PublishBody(BaseModel):
    model_config = STRICT
    summary: Annotated[str, AfterValidator(multiline_text), Field(min_length=10, max_length=1000)] = Field(
        description="对外公开的案情摘要（由受理员编写，不得照抄举报原文，不得含举报人信息）"
    )
    photo_ids: list[uuid.UUID] | None = Field(
        default=None,
        max_length=MAX_PUBLIC_PHOTOS,
        description="公开展示的照片（须为本案照片）；不填则默认展示工作人员上传的核查、整改照片，不展示举报人照片",
    )

    @field_validator("photo_ids")
    @classmethod
    def _distinct(cls, value: list[uuid.UUID] | None) -> list[uuid.UUID] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("照片不能重复")
        return value


class WithdrawBody(BaseModel):
    model_config = STRICT
    reason: Annotated[PlainText, Field(min_length=2, max_length=500)]


class PublicationView(BaseModel):
    """The dispatcher's view of a case's publication."""

    case_id: uuid.UUID
    status: Literal["published", "withdrawn", "hidden"] = Field(
        description="published：公开中；withdrawn：已撤回；hidden：案件已重新办理（如申诉），须重新发布才会公开"
    )
    summary: str
    photo_ids: list[uuid.UUID]
    place_name: str | None
    published_at: datetime
    updated_at: datetime
    withdrawn_at: datetime | None
    withdrawal_reason: str | None


class PublicPlace(BaseModel):
    """Township level at most (the county where there is no township); the point is the unit's centroid."""

    adcode: str
    name: str
    level: str
    longitude: float | None = Field(description="所在乡镇（或县）的中心点经度，WGS-84，精确到 0.01°")
    latitude: float | None
    datum: Literal["wgs84"] = "wgs84"


class PublicOutcome(BaseModel):
    verification: Literal["true", "partly_true"]
    verification_label: str
    hazard_level: Literal["general", "major"] | None
    hazard_level_label: str | None
    rectified: bool


class PublicPhoto(BaseModel):
    display_url: str = Field(description="重新编码、去除全部 EXIF 的展示图（签名链接，有时效）")
    thumbnail_url: str
    width: int
    height: int


class PublicCase(BaseModel):
    """A published case, with every trace of the reporter removed: no report number, no reporter's description,
    photo or point."""

    id: uuid.UUID
    category: CategoryRef
    place: PublicPlace | None
    department: str | None = Field(description="承办部门")
    submitted_at: datetime
    closed_at: datetime
    published_at: datetime
    updated_at: datetime = Field(description="公开内容最后修改时间")
    outcome: PublicOutcome
    summary: str
    photos: list[PublicPhoto]


class PublicCasePage(BaseModel):
    items: list[PublicCase]
    next_cursor: str | None
