"""Reference data for routing: jurisdictions (with their polygons), routing rules, their versions, and the
append-only record of every routing decision."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, CreatedAt, UUIDPrimaryKey, utcnow


class Jurisdiction(Base):
    __tablename__ = "jurisdictions"

    adcode: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(20))
    parent_adcode: Mapped[str | None] = mapped_column(String(12), index=True)
    datum: Mapped[str] = mapped_column(String(8))
    # Well-known binary; the in-memory index is rebuilt from these when the layer's version changes.
    geometry_wkb: Mapped[bytes] = mapped_column(LargeBinary)
    # Drawn for a demo or a drill, not an official boundary: shown as such wherever the name appears.
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RoutingRule(UUIDPrimaryKey, CreatedAt, Base):
    """(category, jurisdiction or any) → department. Rules are never edited: a change retires the old rule and
    adds a new one, so a rule id names exactly what routed a report."""

    __tablename__ = "routing_rules"
    __table_args__ = (Index("ix_routing_rules_category_code_active", "category_code", "is_active"),)

    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    jurisdiction_adcode: Mapped[str | None] = mapped_column(ForeignKey("jurisdictions.adcode"))
    department_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("departments.id"))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_in_version: Mapped[int] = mapped_column(Integer)
    retired_in_version: Mapped[int | None] = mapped_column(Integer)


class ReferenceChange(Base):
    """One version of the reference data: every change to jurisdictions, departments, categories or rules
    appends a row, and its number is the version that routing decisions record."""

    __tablename__ = "reference_changes"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(20))  # jurisdictions | rules | departments | categories
    summary: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RoutingDecision(UUIDPrimaryKey, CreatedAt, Base):
    """Why a report is where it is: the automatic decision at submission and every re-route or hand-back after."""

    __tablename__ = "routing_decisions"
    __table_args__ = (Index("ix_routing_decisions_report_id_created_at", "report_id", "created_at"),)

    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"))
    kind: Mapped[str] = mapped_column(String(20))  # automatic | reroute | hand_back
    outcome: Mapped[str] = mapped_column(String(20))  # routed | triage
    reason: Mapped[str] = mapped_column(String(40))
    explanation: Mapped[str] = mapped_column(Text)
    category_code: Mapped[str] = mapped_column(String(40))
    department_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("departments.id"))
    rule_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("routing_rules.id"))
    reference_version: Mapped[int] = mapped_column(Integer)
    jurisdiction_path: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    ambiguous: Mapped[bool] = mapped_column(Boolean, default=False)
    distance_to_border_m: Mapped[float | None] = mapped_column(Float)
    actor_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    note: Mapped[str | None] = mapped_column(Text)
