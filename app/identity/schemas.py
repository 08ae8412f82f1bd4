from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.identity.roles import Role

STRICT = ConfigDict(strict=True, extra="forbid")


class WeChatLoginRequest(BaseModel):
    model_config = STRICT
    code: str = Field(min_length=1, max_length=128, description="`wx.login` 返回的一次性 code")


class StaffLoginRequest(BaseModel):
    model_config = STRICT
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_at: datetime


class ReporterLoginResponse(TokenResponse):
    reporter_id: uuid.UUID


class StaffProfile(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    role_name: str
    department_id: uuid.UUID | None


class StaffLoginResponse(TokenResponse):
    staff: StaffProfile
