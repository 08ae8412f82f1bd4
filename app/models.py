"""Every mapped table, imported in one place so that Alembic and the model/migration check see all of them."""

from app.catalog.models import Category, Department
from app.core.db import Base
from app.core.idempotency import IdempotencyRecord
from app.identity.models import Reporter, StaffUser
from app.intake.models import Report, ReportContact, ReportNumberCounter, Upload
from app.routing.models import Jurisdiction, ReferenceChange, RoutingDecision, RoutingRule

__all__ = [
    "Base",
    "Category",
    "Department",
    "IdempotencyRecord",
    "Jurisdiction",
    "ReferenceChange",
    "Report",
    "ReportContact",
    "ReportNumberCounter",
    "Reporter",
    "RoutingDecision",
    "RoutingRule",
    "StaffUser",
    "Upload",
]
