from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field


class DeadlinePolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: str = Field(pattern="^(acceptance|verification|rectification)$")
    department_code: str | None = Field(default=None, max_length=64)
    category_code: str | None = Field(default=None, max_length=40)
    days: int = Field(ge=1, le=365, strict=True)
    count: str = Field(pattern="^(calendar|working)$")


class DeadlinePolicyView(BaseModel):
    id: uuid.UUID
    step: str
    department_id: uuid.UUID | None
    category_code: str | None
    days: int
    count: str
