"""Every mapped table, imported in one place so that Alembic and the model/migration check see all of them."""

from app.catalog.models import Category, Department
from app.core.audit import AuditEntry
from app.core.db import Base
from app.core.idempotency import IdempotencyRecord
from app.deadlines.models import CalendarYear, CaseDeadline, DeadlinePolicy
from app.identity.models import Reporter, StaffUser
from app.intake.models import DuplicateCandidate, Report, ReportContact, ReportNumberCounter, ReportNumberSlot, Upload
from app.notifications.models import OutboxMessage, SubscriptionOptIn
from app.open311.models import PartnerKey
from app.publication.models import CasePublication
from app.rewards.models import Reward, RewardLedgerEntry, RewardPayment, RewardPolicyVersion
from app.routing.models import Jurisdiction, ReferenceChange, RoutingDecision, RoutingRule
from app.statistics.models import MonthlyCounts, MonthlyDurations, RollupRefresh
from app.workflow.models import CaseEvent, CaseVerification, Rectification

__all__ = [
    "AuditEntry",
    "Base",
    "CalendarYear",
    "CaseDeadline",
    "CaseEvent",
    "CasePublication",
    "CaseVerification",
    "Category",
    "DeadlinePolicy",
    "Department",
    "DuplicateCandidate",
    "IdempotencyRecord",
    "Jurisdiction",
    "MonthlyCounts",
    "MonthlyDurations",
    "OutboxMessage",
    "PartnerKey",
    "Rectification",
    "ReferenceChange",
    "Report",
    "ReportContact",
    "ReportNumberCounter",
    "ReportNumberSlot",
    "Reporter",
    "Reward",
    "RewardLedgerEntry",
    "RewardPayment",
    "RewardPolicyVersion",
    "RollupRefresh",
    "RoutingDecision",
    "RoutingRule",
    "StaffUser",
    "SubscriptionOptIn",
    "Upload",
]
