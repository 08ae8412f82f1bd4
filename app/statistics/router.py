"""The dashboard (for dispatchers and department heads) and the campaign statistics export."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from app.core.db import utcnow
from app.core.errors import InvalidInput
from app.core.http import error_responses
from app.core.session import DbSession
from app.core.validation import IsoDate
from app.deadlines.calendar import china_day
from app.identity.dependencies import StaffPrincipal, requires
from app.identity.roles import Permission
from app.routing.schemas import CODE_PATTERN
from app.statistics import exports, service
from app.statistics.schemas import CampaignTable, Counts, Durations, Overdues, Rates, RewardTotalsByDepartment

router = APIRouter(prefix="/v1/staff/statistics", tags=["statistics"])
Viewer = Annotated[StaffPrincipal, Depends(requires(Permission.VIEW_STATISTICS))]
ERRORS = error_responses(401, 403, 422)
MAX_DAYS = 3 * 366
Dimension = Literal["period", "category", "department", "jurisdiction", "state"]


# The longest period each granularity is offered for: a daily series longer than a quarter, or a weekly one longer
# than half a year, is read monthly (and a million-report year by day would cost 0.7 s where the target is 0.5 s).
MAX_DAYS_BY_GRANULARITY = {"day": 92, "week": 184}


class PeriodTooLongForGranularity(InvalidInput):
    code = "period_too_long_for_granularity"
    message = "按日统计最长 92 天、按周统计最长 184 天；更长的期间请按月统计"


class InvalidPeriod(InvalidInput):
    code = "invalid_period"
    message = "统计期间不合法：起始日不能晚于截止日，且最长三年"


async def stats_filter(
    date_from: Annotated[IsoDate | None, Query(description="起始日（北京时间，含）；默认截止日前 29 天")] = None,
    date_to: Annotated[IsoDate | None, Query(description="截止日（北京时间，含）；默认今天")] = None,
    category: Annotated[str | None, Query(pattern=CODE_PATTERN, description="行业领域代码")] = None,
    department_id: uuid.UUID | None = None,
    jurisdiction: Annotated[str | None, Query(pattern=r"^[0-9]{6,12}$", description="行政区划代码（含下级）")] = None,
) -> service.StatsFilter:
    last = date_to or china_day(utcnow())
    first = date_from or last - timedelta(days=29)
    if first > last or (last - first).days > MAX_DAYS:
        raise InvalidPeriod(field="date_from")
    return service.StatsFilter(first, last, category, department_id, jurisdiction)


Filter = Annotated[service.StatsFilter, Depends(stats_filter)]


@router.get(
    "/counts", operation_id="statistics_counts", summary="举报件数：按期间×领域×部门×辖区×状态分组", responses=ERRORS
)
async def statistics_counts(
    staff: Viewer,
    session: DbSession,
    filters: Filter,
    group_by: Annotated[list[Dimension] | None, Query(max_length=5, description="分组维度，可多选")] = None,
    granularity: Annotated[Literal["day", "week", "month"], Query(description="期间粒度")] = "month",
) -> Counts:
    dimensions = list(dict.fromkeys(group_by or []))
    limit = MAX_DAYS_BY_GRANULARITY.get(granularity)
    if "period" in dimensions and limit is not None and (filters.date_to - filters.date_from).days + 1 > limit:
        raise PeriodTooLongForGranularity(field="granularity", max_days=limit)
    return await service.counts(session, staff, filters, dimensions, granularity)


@router.get("/rates", operation_id="statistics_rates", summary="受理率、按期核查率、办结率、满意率", responses=ERRORS)
async def statistics_rates(staff: Viewer, session: DbSession, filters: Filter) -> Rates:
    return await service.rates(session, staff, filters)


@router.get(
    "/durations", operation_id="statistics_durations", summary="各环节用时的中位数与 90 分位（小时）", responses=ERRORS
)
async def statistics_durations(staff: Viewer, session: DbSession, filters: Filter) -> Durations:
    return await service.durations(session, staff, filters)


@router.get("/overdue", operation_id="statistics_overdue", summary="逾期未办：按部门与环节", responses=ERRORS)
async def statistics_overdue(staff: Viewer, session: DbSession, filters: Filter) -> Overdues:
    return await service.overdue(session, staff, filters)


@router.get("/rewards", operation_id="statistics_rewards", summary="举报奖励合计：按部门（账目净额）", responses=ERRORS)
async def statistics_rewards(staff: Viewer, session: DbSession, filters: Filter) -> RewardTotalsByDepartment:
    return await service.reward_totals(session, staff, filters)


@router.get("/campaign", operation_id="statistics_campaign", summary="活动统计表：按部门或镇街", responses=ERRORS)
async def statistics_campaign(
    staff: Viewer,
    session: DbSession,
    filters: Filter,
    by: Annotated[Literal["department", "township"], Query()] = "department",
) -> CampaignTable:
    return await service.campaign_table(session, staff, filters, by)


SPREADSHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {SPREADSHEET: {}, "text/csv": {}}}, **ERRORS}


@router.get(
    "/campaign.xlsx",
    operation_id="statistics_campaign_xlsx",
    summary="活动统计表（XLSX：按部门、按镇街两张表）",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def statistics_campaign_xlsx(staff: Viewer, session: DbSession, filters: Filter) -> Response:
    tables = [await service.campaign_table(session, staff, filters, by) for by in ("department", "township")]
    content = exports.xlsx(tables, "“随手拍”安全隐患举报统计表")
    name = f"statistics-{filters.date_from.isoformat()}-{filters.date_to.isoformat()}.xlsx"
    return Response(content, media_type=SPREADSHEET, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get(
    "/campaign.csv",
    operation_id="statistics_campaign_csv",
    summary="活动统计表（CSV）",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def statistics_campaign_csv(
    staff: Viewer,
    session: DbSession,
    filters: Filter,
    by: Annotated[Literal["department", "township"], Query()] = "department",
) -> Response:
    content = exports.csv_text(await service.campaign_table(session, staff, filters, by))
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="statistics-{by}.csv"'},
    )
