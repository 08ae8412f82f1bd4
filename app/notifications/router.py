from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from app.core.context import AppContext, get_context
from app.core.errors import InvalidInput
from app.core.http import error_responses
from app.core.session import DbSession
from app.identity.dependencies import CurrentReporter
from app.notifications import outbox

router = APIRouter(prefix="/v1/me", tags=["notifications"])

TemplateKey = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]


class UnknownTemplate(InvalidInput):
    code = "unknown_template"
    message = "订阅消息模板不存在"


class OptInAnswer(BaseModel):
    """The result of one ``wx.requestSubscribeMessage``: which templates were asked, which the user accepted."""

    model_config = ConfigDict(extra="forbid")
    asked: list[TemplateKey] = Field(min_length=1, max_length=3)
    accepted: list[TemplateKey] = Field(max_length=3)


class OptInCounts(BaseModel):
    available: dict[str, int] = Field(description="每个模板还可发送的消息条数（一次订阅一条）")
    template_ids: dict[str, str] = Field(description="模板键对应的微信模板 ID")


@router.get(
    "/subscriptions/templates",
    operation_id="list_subscription_templates",
    summary="可订阅的消息模板（供 wx.requestSubscribeMessage 使用）",
)
async def list_subscription_templates(context: Annotated[AppContext, Depends(get_context)]) -> dict[str, str]:
    return dict(context.settings.wechat.templates)


@router.post(
    "/subscriptions",
    operation_id="record_subscriptions",
    summary="记录一次订阅消息授权",
    responses=error_responses(401, 422),
)
async def record_subscriptions(
    body: OptInAnswer,
    reporter: CurrentReporter,
    session: DbSession,
    context: Annotated[AppContext, Depends(get_context)],
) -> OptInCounts:
    templates = context.settings.wechat.templates
    unknown = sorted(set(body.asked) - set(templates))
    if unknown:
        raise UnknownTemplate(field="asked", keys=unknown)
    counts = await outbox.record_opt_ins(session, reporter.reporter_id, body.asked, body.accepted)
    return OptInCounts(available=counts, template_ids={key: templates[key] for key in body.asked})
