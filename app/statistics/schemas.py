from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field


class CountRow(BaseModel):
    period: str | None = None
    category: str | None = None
    category_name: str | None = None
    department_id: uuid.UUID | None = None
    department_name: str | None = None
    jurisdiction: str | None = None
    jurisdiction_name: str | None = None
    state: str | None = None
    count: int


class Counts(BaseModel):
    group_by: list[str]
    granularity: str
    total: int
    rows: list[CountRow]


class Rates(BaseModel):
    received: int = Field(description="期内收到的举报")
    accepted: int = Field(description="其中已受理（含此后各环节）")
    verified: int = Field(description="其中已核查（核查期限已履行）")
    verified_on_time: int
    closed: int
    rated: int
    acceptance_rate: float | None = Field(description="受理率：已受理 ÷ 已作受理决定（不含合并的重复举报）")
    on_time_verification_rate: float | None = Field(description="按期核查率：期限内核查 ÷ 已核查")
    closure_rate: float | None = Field(description="办结率：已办结 ÷ 已受理")
    satisfaction_rate: float | None = Field(description="满意率：4–5 分 ÷ 已评价")
    mean_satisfaction: float | None


class DurationRow(BaseModel):
    step: str = Field(description="acceptance 受理、verification 核查、rectification 整改、closure 提交至办结")
    count: int
    median_hours: float | None
    p90_hours: float | None


class Durations(BaseModel):
    steps: list[DurationRow]


class OverdueRow(BaseModel):
    department_id: uuid.UUID | None
    department_name: str | None
    step: str
    count: int
    oldest_due_at: datetime


class Overdues(BaseModel):
    total: int
    rows: list[OverdueRow]


class RewardRow(BaseModel):
    department_id: uuid.UUID | None
    department_name: str | None
    rewards: int
    approved_fen: int
    paid_fen: int


class RewardTotalsByDepartment(BaseModel):
    approved_fen: int
    paid_fen: int
    rows: list[RewardRow]


class CampaignRow(BaseModel):
    key: str | None = Field(description="部门 id 或镇街行政区划代码")
    name: str
    received: int
    accepted: int
    verified_true: int
    rectified: int
    closed: int
    rewards_paid: int = Field(description="已发放奖励的举报数")
    rewards_paid_fen: int


class CampaignTable(BaseModel):
    by: str
    date_from: date
    date_to: date
    rows: list[CampaignRow]
    total: CampaignRow
