"""The routing snapshot each process keeps in memory, and reading it fresh when the reference data changes.

Every change to the reference data appends a ``reference_changes`` row; its number is the version. A process checks
the latest version (one indexed read) before it routes, and rebuilds what changed: the active rules are cheap to
reload, the jurisdiction index is rebuilt (off the event loop) only when the jurisdictions themselves changed. So
an admin's change takes effect in every API process on its next routing decision, with no restart.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import anyio
import shapely
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Category, Department
from app.core.context import AppContext
from app.core.db import fetch_all
from app.geo.datum import Datum
from app.geo.geojson import JurisdictionFeature
from app.geo.index import JurisdictionIndex, LookupResult
from app.routing.models import Jurisdiction, ReferenceChange, RoutingRule
from app.routing.rules import Rule

CACHE_KEY = "routing"
JURISDICTIONS = "jurisdictions"


@dataclass(frozen=True)
class Versions:
    latest: int
    jurisdictions: int


@dataclass
class RoutingSnapshot:
    version: int = -1
    jurisdiction_version: int = -1
    indexes: dict[Datum, JurisdictionIndex] = field(default_factory=dict)
    levels: dict[str, str] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    categories: dict[str, str] = field(default_factory=dict)
    departments: dict[uuid.UUID, str] = field(default_factory=dict)

    def locate(self, lon: float, lat: float, datum: Datum) -> LookupResult | None:
        """The deepest result over the jurisdiction layers (one per datum the layers were drawn in)."""
        results = [index.lookup(lon, lat, datum) for index in self.indexes.values()]
        found = [r for r in results if r.unit is not None]
        return max(found, key=lambda r: len(r.path)) if found else None


# On the table, not the model: read before every routing decision, and the ORM's steps cost more than the query.
_CHANGES = ReferenceChange.__table__
_VERSIONS = select(_CHANGES.c.kind, func.max(_CHANGES.c.version)).group_by(_CHANGES.c.kind)


@dataclass
class RoutingCache:
    snapshot: RoutingSnapshot = field(default_factory=RoutingSnapshot)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def versions(session: AsyncSession) -> Versions:
    rows = await fetch_all(session, _VERSIONS, {})
    by_kind = {kind: int(version) for kind, version in rows}
    return Versions(latest=max(by_kind.values(), default=0), jurisdictions=by_kind.get(JURISDICTIONS, 0))


async def current_snapshot(session: AsyncSession, context: AppContext) -> RoutingSnapshot:
    cache: RoutingCache = context.caches.setdefault(CACHE_KEY, RoutingCache())
    wanted = await versions(session)
    if cache.snapshot.version == wanted.latest:
        return cache.snapshot
    async with cache.lock:
        snapshot = cache.snapshot
        if snapshot.version == wanted.latest:
            return snapshot
        fresh = RoutingSnapshot(version=wanted.latest, jurisdiction_version=wanted.jurisdictions)
        if snapshot.jurisdiction_version == wanted.jurisdictions:
            fresh.indexes, fresh.levels = snapshot.indexes, snapshot.levels
        else:
            fresh.indexes, fresh.levels = await _build_indexes(session, context)
        fresh.rules = await _active_rules(session)
        fresh.categories = dict(
            (await session.execute(select(Category.code, Category.name).where(Category.is_active))).all()
        )
        fresh.departments = dict((await session.execute(select(Department.id, Department.name))).all())
        cache.snapshot = fresh
        return fresh


async def _build_indexes(
    session: AsyncSession, context: AppContext
) -> tuple[dict[Datum, JurisdictionIndex], dict[str, str]]:
    rows = (await session.scalars(select(Jurisdiction))).all()
    by_datum: dict[Datum, list[JurisdictionFeature]] = defaultdict(list)
    levels: dict[str, str] = {}
    for row in rows:
        geometry = shapely.from_wkb(row.geometry_wkb)
        by_datum[Datum(row.datum)].append(
            JurisdictionFeature(row.adcode, row.name, row.level, row.parent_adcode, geometry)
        )
        levels[row.adcode] = row.level
    indexes: dict[Datum, JurisdictionIndex] = {}
    for datum, features in by_datum.items():
        # Building the whole country takes seconds of CPU: not on the event loop.
        indexes[datum] = await anyio.to_thread.run_sync(_index, features, datum, limiter=context.cpu_limiter)
    return indexes, levels


def _index(features: list[JurisdictionFeature], datum: Datum) -> JurisdictionIndex:
    return JurisdictionIndex(features, datum=datum)


async def _active_rules(session: AsyncSession) -> list[Rule]:
    rows = (
        await session.execute(
            select(RoutingRule, Department.name)
            .join(Department, Department.id == RoutingRule.department_id)
            .where(RoutingRule.is_active, Department.is_active)
        )
    ).all()
    return [
        Rule(
            rule.id,
            rule.category_code,
            rule.jurisdiction_adcode,
            rule.department_id,
            name,
            rule.priority,
            rule.created_at,
        )
        for rule, name in rows
    ]


async def warm(context: AppContext) -> None:
    """Build the snapshot at start-up, so that the first report does not wait for the index (seconds for the whole
    country)."""
    from app.core.db import unit_of_work

    async with unit_of_work(context.sessions) as session:
        await current_snapshot(session, context)
