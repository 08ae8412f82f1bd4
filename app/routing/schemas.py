from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from app.core.validation import WholeNumber, control_characters
from app.geo.datum import Datum
from app.intake.schemas import Location

FORBID = ConfigDict(extra="forbid")
CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
ADCODE_PATTERN = r"^[0-9]{6,12}$"


class PlaceView(BaseModel):
    adcode: str
    name: str
    level: str


class DecisionView(BaseModel):
    kind: str = Field(description="automatic（提交时自动）| reroute（受理员改派）| hand_back（部门退回）")
    outcome: str = Field(description="routed（已转办）| triage（待人工分派）")
    reason: str
    explanation: str
    category_code: str
    department_id: uuid.UUID | None
    department_name: str | None
    rule_id: uuid.UUID | None
    reference_version: int
    jurisdiction_path: list[PlaceView]
    ambiguous: bool
    distance_to_border_m: float | None
    note: str | None
    decided_at: datetime


class RoutingPreviewRequest(BaseModel):
    model_config = FORBID
    category: str = Field(min_length=1, max_length=40)
    location: Location


class JurisdictionImportResult(BaseModel):
    imported: int
    reference_version: int
    adcodes: list[str]


class JurisdictionView(BaseModel):
    adcode: str
    name: str
    level: str
    parent_adcode: str | None
    datum: Datum
    illustrative: bool


def _no_control_characters(value: str) -> str:
    # A NUL in a name reached PostgreSQL and failed there as a 500 (found by schemathesis on PostgreSQL).
    if control_characters(value, allow_newlines=False):
        raise PydanticCustomError("control_characters", "不能包含控制字符")
    return value


class DepartmentCreate(BaseModel):
    model_config = FORBID
    code: str = Field(pattern=CODE_PATTERN)
    name: Annotated[str, AfterValidator(_no_control_characters)] = Field(min_length=1, max_length=100)
    jurisdiction_adcode: str | None = Field(default=None, pattern=ADCODE_PATTERN)


class DepartmentView(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    jurisdiction_adcode: str | None
    is_active: bool


class CategoryCreate(BaseModel):
    model_config = FORBID
    code: str = Field(pattern=CODE_PATTERN)
    name: Annotated[str, AfterValidator(_no_control_characters)] = Field(min_length=1, max_length=40)


class RuleCreate(BaseModel):
    model_config = FORBID
    category_code: str = Field(min_length=1, max_length=40)
    jurisdiction_adcode: str | None = Field(default=None, pattern=ADCODE_PATTERN, description="为空表示任意地区")
    department_code: str = Field(min_length=1, max_length=64)
    priority: Annotated[int, WholeNumber] = Field(default=0, ge=-1000, le=1000, strict=True)


class RuleView(BaseModel):
    id: uuid.UUID
    category_code: str
    jurisdiction_adcode: str | None
    department_id: uuid.UUID
    department_name: str
    priority: int
    is_active: bool
    created_in_version: int
    retired_in_version: int | None


class ReferenceChangeView(BaseModel):
    version: int
    kind: str
    summary: str
    actor: str
    created_at: datetime
