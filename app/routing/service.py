"""Routing use cases: the decision for a new report, its record, and the admin's reference-data commands."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import anyio
import shapely
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service as catalog
from app.catalog.errors import UnknownCategory
from app.catalog.models import Category, Department
from app.core import audit
from app.core.context import AppContext
from app.core.db import utcnow
from app.geo.datum import Datum
from app.geo.geojson import JurisdictionFeature, parse_geojson
from app.routing import reference
from app.routing.errors import (
    DuplicateCode,
    MissingParentJurisdiction,
    ReferenceChangedConcurrently,
    RuleNotFound,
    UnknownJurisdiction,
)
from app.routing.models import Jurisdiction, ReferenceChange, RoutingDecision, RoutingRule
from app.routing.rules import PlaceStep, RoutingReason, choose_rule
from app.routing.schemas import (
    DecisionView,
    DepartmentView,
    JurisdictionImportResult,
    JurisdictionView,
    PlaceView,
    ReferenceChangeView,
    RuleView,
)

# Levels that name a county-level unit, whose adcode goes into report numbers.
COUNTY_LEVEL = "district"
CITY_LEVEL = "city"


@dataclass(frozen=True)
class RoutingOutcome:
    category_code: str
    reason: RoutingReason
    explanation: str
    department_id: uuid.UUID | None
    department_name: str | None
    rule_id: uuid.UUID | None
    reference_version: int
    path: tuple[PlaceStep, ...] = ()
    ambiguous: bool = False
    distance_to_border_m: float | None = None
    nearby: tuple[PlaceStep, ...] = field(default=())

    @property
    def jurisdiction_adcode(self) -> str | None:
        return self.path[-1].adcode if self.path else None

    @property
    def county_adcode(self) -> str | None:
        for level in (COUNTY_LEVEL, CITY_LEVEL):
            matches = [step.adcode for step in self.path if step.level == level]
            if matches:
                return matches[-1]
        return None


async def route(
    session: AsyncSession, context: AppContext, category_code: str, longitude: float, latitude: float, datum: Datum
) -> RoutingOutcome:
    snapshot = await reference.current_snapshot(session, context)
    if category_code not in snapshot.categories:
        raise UnknownCategory(field="category")
    located = snapshot.locate(longitude, latitude, datum)
    path = tuple(PlaceStep(u.adcode, u.name, u.level) for u in located.path) if located else ()
    category_name = snapshot.categories[category_code]
    choice = choose_rule(snapshot.rules, category_code, category_name, path)
    explanation = choice.explanation
    ambiguous = bool(located and located.ambiguous)
    if ambiguous:
        explanation += "；位置靠近行政区域边界，请受理员核对属地"
    return RoutingOutcome(
        category_code=category_code,
        reason=choice.reason,
        explanation=explanation,
        department_id=choice.rule.department_id if choice.rule else None,
        department_name=choice.rule.department_name if choice.rule else None,
        rule_id=choice.rule.id if choice.rule else None,
        reference_version=snapshot.version,
        path=path,
        ambiguous=ambiguous,
        distance_to_border_m=located.distance_to_border_m if located else None,
        nearby=tuple(PlaceStep(u.adcode, u.name, u.level) for u in located.nearby) if located else (),
    )


async def record_manual(
    session: AsyncSession,
    *,
    report_id: uuid.UUID,
    category_code: str,
    reason: RoutingReason,
    explanation: str,
    department: Department | None,
    kind: str,
    actor_staff_id: uuid.UUID,
    note: str | None,
) -> RoutingOutcome:
    """A decision made by a person (re-route, assignment to another department, hand-back), on the record."""
    outcome = RoutingOutcome(
        category_code=category_code,
        reason=reason,
        explanation=explanation,
        department_id=department.id if department else None,
        department_name=department.name if department else None,
        rule_id=None,
        reference_version=await current_version(session),
    )
    session.add(decision_row(report_id, outcome, kind, actor_staff_id, note))
    return outcome


def decision_row(
    report_id: uuid.UUID,
    outcome: RoutingOutcome,
    kind: str,
    actor_staff_id: uuid.UUID | None = None,
    note: str | None = None,
) -> RoutingDecision:
    return RoutingDecision(
        report_id=report_id,
        kind=kind,
        outcome="routed" if outcome.department_id else "triage",
        reason=outcome.reason.value,
        explanation=outcome.explanation,
        category_code=outcome.category_code,
        department_id=outcome.department_id,
        rule_id=outcome.rule_id,
        reference_version=outcome.reference_version,
        jurisdiction_path=[{"adcode": s.adcode, "name": s.name, "level": s.level} for s in outcome.path],
        ambiguous=outcome.ambiguous,
        distance_to_border_m=outcome.distance_to_border_m,
        actor_staff_id=actor_staff_id,
        note=note,
        created_at=utcnow(),
    )


async def decisions_of(session: AsyncSession, report_id: uuid.UUID) -> list[DecisionView]:
    rows = (
        await session.execute(
            select(RoutingDecision, Department.name)
            .outerjoin(Department, Department.id == RoutingDecision.department_id)
            .where(RoutingDecision.report_id == report_id)
            .order_by(RoutingDecision.created_at, RoutingDecision.id)
        )
    ).all()
    return [
        DecisionView(
            kind=d.kind,
            outcome=d.outcome,
            reason=d.reason,
            explanation=d.explanation,
            category_code=d.category_code,
            department_id=d.department_id,
            department_name=name,
            rule_id=d.rule_id,
            reference_version=d.reference_version,
            jurisdiction_path=[PlaceView(**p) for p in d.jurisdiction_path],
            ambiguous=d.ambiguous,
            distance_to_border_m=d.distance_to_border_m,
            note=d.note,
            decided_at=d.created_at,
        )
        for d, name in rows
    ]


def outcome_view(outcome: RoutingOutcome) -> DecisionView:
    return DecisionView(
        kind="preview",
        outcome="routed" if outcome.department_id else "triage",
        reason=outcome.reason.value,
        explanation=outcome.explanation,
        category_code=outcome.category_code,
        department_id=outcome.department_id,
        department_name=outcome.department_name,
        rule_id=outcome.rule_id,
        reference_version=outcome.reference_version,
        jurisdiction_path=[PlaceView(adcode=s.adcode, name=s.name, level=s.level) for s in outcome.path],
        ambiguous=outcome.ambiguous,
        distance_to_border_m=outcome.distance_to_border_m,
        note=None,
        decided_at=utcnow(),
    )


async def current_version(session: AsyncSession) -> int:
    return (await reference.versions(session)).latest


# --- reference data: versions ----------------------------------------------------------------------------------


async def new_version(session: AsyncSession, kind: str, summary: str, actor: str) -> int:
    latest = await session.scalar(select(func.max(ReferenceChange.version)))
    version = int(latest or 0) + 1
    try:
        async with session.begin_nested():
            session.add(
                ReferenceChange(version=version, kind=kind, summary=summary[:2000], actor=actor, created_at=utcnow())
            )
    except IntegrityError as exc:
        raise ReferenceChangedConcurrently() from exc
    audit.record(
        session,
        actor_id=actor,
        actor_role=None,
        action=f"reference_{kind}",
        target_type="reference",
        target_id=str(version),
        detail={"summary": summary[:500]},
    )
    return version


async def list_changes(session: AsyncSession, limit: int = 100) -> list[ReferenceChangeView]:
    rows = (await session.scalars(select(ReferenceChange).order_by(ReferenceChange.version.desc()).limit(limit))).all()
    return [
        ReferenceChangeView(version=r.version, kind=r.kind, summary=r.summary, actor=r.actor, created_at=r.created_at)
        for r in rows
    ]


# --- jurisdictions -----------------------------------------------------------------------------------------------


async def import_jurisdictions(
    session: AsyncSession,
    context: AppContext,
    data: bytes,
    *,
    datum: Datum,
    illustrative: bool,
    actor: str,
    source: str = "upload",
) -> JurisdictionImportResult:
    # Parsing and repairing thousands of polygons is CPU work: off the event loop. It raises before anything is
    # written, and the writes share one transaction, so an import is all or nothing.
    features = await anyio.to_thread.run_sync(_parse, data, source, limiter=context.cpu_limiter)
    return await save_jurisdictions(session, features, datum=datum, illustrative=illustrative, actor=actor)


async def save_jurisdictions(
    session: AsyncSession, features: list[JurisdictionFeature], *, datum: Datum, illustrative: bool, actor: str
) -> JurisdictionImportResult:
    await _check_parents(session, features)
    existing = {
        row.adcode: row
        for row in (
            await session.scalars(select(Jurisdiction).where(Jurisdiction.adcode.in_([f.adcode for f in features])))
        ).all()
    }
    now = utcnow()
    for feature in features:
        row = existing.get(feature.adcode) or Jurisdiction(adcode=feature.adcode)
        row.name, row.level, row.parent_adcode = feature.name, feature.level, feature.parent_adcode
        row.datum, row.illustrative, row.updated_at = datum.value, illustrative, now
        row.geometry_wkb = shapely.to_wkb(feature.geometry)
        session.add(row)
    await session.flush()
    names = "、".join(f.name for f in features[:5]) + ("等" if len(features) > 5 else "")
    version = await new_version(session, reference.JURISDICTIONS, f"导入 {len(features)} 个行政区域：{names}", actor)
    return JurisdictionImportResult(
        imported=len(features), reference_version=version, adcodes=[f.adcode for f in features]
    )


def _parse(data: bytes, source: str) -> list[JurisdictionFeature]:
    return parse_geojson(data, source=source)


async def _check_parents(session: AsyncSession, features: list[JurisdictionFeature]) -> None:
    in_file = {f.adcode for f in features}
    wanted = {f.parent_adcode for f in features if f.parent_adcode and f.parent_adcode not in in_file}
    if not wanted:
        return
    known = set((await session.scalars(select(Jurisdiction.adcode).where(Jurisdiction.adcode.in_(wanted)))).all())
    missing = sorted(wanted - known)
    if missing:
        raise MissingParentJurisdiction(field="parent", missing=missing)


async def list_jurisdictions(session: AsyncSession, parent_adcode: str | None) -> list[JurisdictionView]:
    query = select(Jurisdiction).order_by(Jurisdiction.adcode)
    query = query.where(Jurisdiction.parent_adcode == parent_adcode) if parent_adcode else query
    rows = (await session.scalars(query)).all()
    return [
        JurisdictionView(
            adcode=r.adcode,
            name=r.name,
            level=r.level,
            parent_adcode=r.parent_adcode,
            datum=Datum(r.datum),
            illustrative=r.illustrative,
        )
        for r in rows
    ]


# --- departments and categories ----------------------------------------------------------------------------------


async def create_department(
    session: AsyncSession, code: str, name: str, jurisdiction_adcode: str | None, actor: str
) -> DepartmentView:
    if await session.scalar(select(Department.id).where(Department.code == code)) is not None:
        raise DuplicateCode(field="code")
    if jurisdiction_adcode is not None:
        await _require_jurisdiction(session, jurisdiction_adcode)
    department = Department(code=code, name=name, jurisdiction_adcode=jurisdiction_adcode)
    session.add(department)
    await session.flush()
    await new_version(session, "departments", f"新增部门 {name}（{code}）", actor)
    return department_view(department)


def department_view(department: Department) -> DepartmentView:
    return DepartmentView(
        id=department.id,
        code=department.code,
        name=department.name,
        jurisdiction_adcode=department.jurisdiction_adcode,
        is_active=department.is_active,
    )


async def list_departments(session: AsyncSession) -> list[DepartmentView]:
    return [department_view(d) for d in (await session.scalars(select(Department).order_by(Department.code))).all()]


async def create_category(session: AsyncSession, code: str, name: str, actor: str) -> None:
    if await session.get(Category, code) is not None:
        raise DuplicateCode(field="code")
    count = await session.scalar(select(func.count()).select_from(Category))
    session.add(Category(code=code, name=name, sort_order=int(count or 0), is_active=True, created_at=utcnow()))
    await session.flush()
    await new_version(session, "categories", f"新增行业领域 {name}（{code}）", actor)


# --- rules -------------------------------------------------------------------------------------------------------


async def create_rule(
    session: AsyncSession,
    *,
    category_code: str,
    jurisdiction_adcode: str | None,
    department_code: str,
    priority: int,
    actor: str,
) -> RuleView:
    if await session.get(Category, category_code) is None:
        raise UnknownCategory(field="category_code")
    if jurisdiction_adcode is not None:
        await _require_jurisdiction(session, jurisdiction_adcode)
    department = await catalog.active_department(session, department_code)
    place = jurisdiction_adcode or "任意地区"
    version = await new_version(session, "rules", f"新增规则 {category_code} @ {place} → {department.name}", actor)
    rule = RoutingRule(
        category_code=category_code,
        jurisdiction_adcode=jurisdiction_adcode,
        department_id=department.id,
        priority=priority,
        created_in_version=version,
        created_at=utcnow(),
    )
    session.add(rule)
    await session.flush()
    return _rule_view(rule, department.name)


async def retire_rule(session: AsyncSession, rule_id: uuid.UUID, actor: str) -> RuleView:
    rule = await session.get(RoutingRule, rule_id, with_for_update=True)
    if rule is None:
        raise RuleNotFound()
    department = await session.get(Department, rule.department_id)
    assert department is not None
    if rule.is_active:
        rule.is_active = False
        rule.retired_in_version = await new_version(
            session, "rules", f"停用规则 {rule.category_code} @ {rule.jurisdiction_adcode or '任意地区'}", actor
        )
        await session.flush()
    return _rule_view(rule, department.name)


async def list_rules(session: AsyncSession, include_retired: bool) -> list[RuleView]:
    query = (
        select(RoutingRule, Department.name)
        .join(Department, Department.id == RoutingRule.department_id)
        .order_by(RoutingRule.category_code, RoutingRule.jurisdiction_adcode, RoutingRule.created_at)
    )
    if not include_retired:
        query = query.where(RoutingRule.is_active)
    return [_rule_view(rule, name) for rule, name in (await session.execute(query)).all()]


def _rule_view(rule: RoutingRule, department_name: str) -> RuleView:
    return RuleView(
        id=rule.id,
        category_code=rule.category_code,
        jurisdiction_adcode=rule.jurisdiction_adcode,
        department_id=rule.department_id,
        department_name=department_name,
        priority=rule.priority,
        is_active=rule.is_active,
        created_in_version=rule.created_in_version,
        retired_in_version=rule.retired_in_version,
    )


async def _require_jurisdiction(session: AsyncSession, adcode: str) -> None:
    if await session.get(Jurisdiction, adcode) is None:
        raise UnknownJurisdiction(field="jurisdiction_adcode")
