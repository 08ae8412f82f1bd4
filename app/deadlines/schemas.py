from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.core.validation import WholeNumber


class DeadlinePolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: str = Field(pattern="^(acceptance|verification|rectification)$")
    # None is "any"; an empty code is no code (it was taken for "any" on one check and stored as a code by the next).
    department_code: str | None = Field(default=None, min_length=1, max_length=64)
    category_code: str | None = Field(default=None, min_length=1, max_length=40)
    days: Annotated[int, WholeNumber] = Field(ge=1, le=365, strict=True)
    count: str = Field(pattern="^(calendar|working)$")


class DeadlinePolicyView(BaseModel):
    id: uuid.UUID
    step: str
    department_id: uuid.UUID | None
    category_code: str | None
    days: int
    count: str
