"""The JSON shapes of the spec (documentation for openapi.yaml: the routes answer the same documents as JSON or XML)
and the admin's partner keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from app.intake.schemas import STRICT, PlainText


class Open311Error(BaseModel):
    code: str = Field(description="稳定的错误代码")
    description: str


class Open311Endpoint(BaseModel):
    specification: str
    url: str
    changeset: str
    type: Literal["production", "test"]
    formats: list[str]


class Open311Discovery(BaseModel):
    changeset: str
    contact: str
    key_service: str
    endpoints: list[Open311Endpoint]


class Open311Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: Literal["realtime"]
    keywords: str
    group: str


class Open311AttributeValue(BaseModel):
    key: str
    name: str


class Open311Attribute(BaseModel):
    variable: bool
    code: str
    datatype: Literal["string", "datetime", "singlevaluelist"]
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: list[Open311AttributeValue]


class Open311ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[Open311Attribute]


class Open311Request(BaseModel):
    """A published case. No reporter data, no report number, no exact point: ``lat``/``long`` are the township's
    (or county's) centroid in WGS-84; ``description`` is the dispatcher's public summary."""

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str | None
    service_name: str
    service_code: str
    description: str
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None
    address: str | None = Field(description="乡镇（或县）名称")
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None = Field(description="第一张公开照片的展示图（去除 EXIF 的重新编码图，签名链接）")


class Open311Receipt(BaseModel):
    service_request_id: str
    service_notice: str
    account_id: str | None


class PartnerCreate(BaseModel):
    model_config = STRICT
    name: Annotated[PlainText, Field(min_length=2, max_length=100, description="合作方名称，如 某市 12345 平台")]


class PartnerView(BaseModel):
    id: uuid.UUID
    name: str
    key_hint: str = Field(description="密钥的前几位，用于辨认")
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class PartnerCreated(PartnerView):
    api_key: str = Field(description="仅此一次显示，请妥善交给合作方；服务器只保存其带密钥的哈希")
