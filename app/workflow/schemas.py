from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.intake.schemas import CategoryRef, Enterprise, HazardKind, Location, PhotoView, multiline_text
from app.routing.schemas import DecisionView

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
    # Shown to dispatchers only: dispatch aids that could help identify a whistleblower if they reached the unit.
    reporter_is_employee: bool | None = None
    flags: list[dict[str, Any]] | None = None


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


class HandBackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason = Field(description="退回理由，例如：非本部门职责，应由某某局承办")
