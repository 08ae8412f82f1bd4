"""rewards: policies (the national 2018 policy and two local variants shipped as data), rewards, ledger, payments

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 23:15:11.091122
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The policies shipped with the service, frozen here as data (app.rewards.policy builds the same ones for tests):
# the national 2018 policy is the default everywhere; 山东 and 深圳 are examples scoped to their adcodes.
SHIPPED_POLICIES = json.loads(
    r"""
[
 {
  "code": "national-2018",
  "name": "安全生产领域举报奖励办法（安监总财〔2018〕19号）",
  "version": 1,
  "effective_from": "2018-01-04",
  "effective_to": null,
  "jurisdiction_scope": null,
  "rules": {
   "major_hazard": {
    "mode": "percent_of_penalty",
    "excluded_categories": [],
    "rate_bp": 1500,
    "min_fen": 300000,
    "max_fen": 30000000
   },
   "illegal_production": {
    "mode": "percent_of_penalty",
    "excluded_categories": [],
    "rate_bp": 1500,
    "min_fen": 300000,
    "max_fen": 30000000
   },
   "concealed_accident": {
    "mode": "per_concealed_death",
    "excluded_categories": [],
    "per_death_fen": {
     "general": 3000000,
     "larger": 4000000,
     "major": 5000000,
     "especially_major": 6000000
    },
    "cap_fen": 30000000
   }
  },
  "per_report_cap_fen": 30000000,
  "cap_override_allowed": false,
  "reporter_caps": [],
  "employee_uplift": null,
  "verification_share_bp": null,
  "exclusions": [
   "flagged",
   "regulator_staff_or_relative"
  ],
  "anonymous": "no_reward",
  "claim_window_days": 60,
  "sources": [
   "安监总财〔2018〕19号《安全生产领域举报奖励办法》",
   "http://isofans.com/thread-1561773-1-1.html",
   "http://news.gscn.com.cn/system/2018/01/31/011899925.shtml",
   "http://yndcaqjs.com/show.asp?id=1400",
   "http://jl.sina.com.cn/news/s/2019-06-14/detail-ihvhiews8735740.shtml",
   "http://zjhxpxh.org.cn/?id=10154&mod=newsdat"
  ]
 },
 {
  "code": "shandong-2019",
  "name": "山东省安全生产举报奖励办法（2019）",
  "version": 1,
  "effective_from": "2019-06-01",
  "effective_to": null,
  "jurisdiction_scope": "370000",
  "rules": {
   "general_hazard": {
    "mode": "range",
    "excluded_categories": [
     "fire_safety"
    ],
    "min_fen": 50000,
    "max_fen": 500000
   },
   "major_hazard": {
    "mode": "percent_of_penalty",
    "excluded_categories": [
     "fire_safety"
    ],
    "rate_bp": 5000,
    "min_fen": 500000,
    "max_fen": 50000000
   },
   "illegal_production": {
    "mode": "percent_of_penalty",
    "excluded_categories": [
     "fire_safety"
    ],
    "rate_bp": 5000,
    "min_fen": 500000,
    "max_fen": 50000000
   },
   "concealed_accident": {
    "mode": "per_concealed_death",
    "excluded_categories": [],
    "per_death_fen": {
     "general": 3000000,
     "larger": 4000000,
     "major": 5000000,
     "especially_major": 6000000
    },
    "cap_fen": 50000000
   }
  },
  "per_report_cap_fen": 50000000,
  "cap_override_allowed": false,
  "reporter_caps": [],
  "employee_uplift": null,
  "verification_share_bp": null,
  "exclusions": [
   "flagged",
   "regulator_staff_or_relative"
  ],
  "anonymous": "no_reward",
  "claim_window_days": 60,
  "sources": [
   "山东省应急管理厅 山东省财政厅《山东省安全生产举报奖励办法》（2019）",
   "https://yybnet.net/shandong/news/201906/9152553.html",
   "http://sdtzsb.net/mobile.php/News/view/id/3994.html",
   "https://www.lvshuolvda.com/flwd/752452.html"
  ]
 },
 {
  "code": "shenzhen",
  "name": "深圳市安全生产领域举报处理办法",
  "version": 1,
  "effective_from": "2025-01-11",
  "effective_to": null,
  "jurisdiction_scope": "440300",
  "rules": {
   "general_hazard": {
    "mode": "fixed",
    "excluded_categories": [],
    "amount_fen": 50000
   },
   "major_hazard": {
    "mode": "percent_of_penalty",
    "excluded_categories": [],
    "rate_bp": 1500,
    "min_fen": 300000,
    "max_fen": null
   },
   "illegal_production": {
    "mode": "percent_of_penalty",
    "excluded_categories": [],
    "rate_bp": 1500,
    "min_fen": 300000,
    "max_fen": null
   },
   "concealed_accident": {
    "mode": "per_concealed_death",
    "excluded_categories": [],
    "per_death_fen": {
     "general": 3000000,
     "larger": 4000000,
     "major": 5000000,
     "especially_major": 6000000
    },
    "cap_fen": null
   }
  },
  "per_report_cap_fen": 30000000,
  "cap_override_allowed": true,
  "reporter_caps": [],
  "employee_uplift": null,
  "verification_share_bp": null,
  "exclusions": [
   "flagged",
   "regulator_staff_or_relative"
  ],
  "anonymous": "no_reward",
  "claim_window_days": 60,
  "sources": [
   "《深圳市安全生产领域举报处理办法》（深应急规〔2019〕1号 及其后修订）",
   "https://yjgl.sz.gov.cn/zwgk/xxgkml/qt/gzdt/content/post_11954679.html",
   "https://www.dutenews.com/n/article/8588630",
   "http://www.szthemson.com/news/770.html"
  ]
 }
]
"""
)


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "reward_policies",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_to", sa.Date(), nullable=True),
        sa.Column("jurisdiction_scope", sa.String(length=12), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_policies")),
        sa.UniqueConstraint("code", "version", name=op.f("uq_reward_policies_code_version")),
    )
    op.create_table(
        "rewards",
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("stage", sa.String(length=12), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("department_id", sa.Uuid(), nullable=True),
        sa.Column("category_code", sa.String(length=40), nullable=False),
        sa.Column("jurisdiction_adcode", sa.String(length=12), nullable=True),
        sa.Column("case_kind", sa.String(length=24), nullable=False),
        sa.Column("reporter_id", sa.Uuid(), nullable=True),
        sa.Column("reporter_key", sa.String(length=80), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("policy_id", sa.Uuid(), nullable=False),
        sa.Column("policy_code", sa.String(length=64), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("total_fen", sa.BigInteger(), nullable=True),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("confirmed_by", sa.Uuid(), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("approved_fen", sa.BigInteger(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_via", sa.String(length=10), nullable=True),
        sa.Column("payee_name_encrypted", sa.String(length=300), nullable=True),
        sa.Column("payee_id_number_encrypted", sa.String(length=300), nullable=True),
        sa.Column("payee_account_encrypted", sa.String(length=300), nullable=True),
        sa.Column("payee_bank", sa.String(length=100), nullable=True),
        sa.Column("payee_name_masked", sa.String(length=40), nullable=True),
        sa.Column("payee_id_masked", sa.String(length=24), nullable=True),
        sa.Column("payee_account_masked", sa.String(length=40), nullable=True),
        sa.Column("payee_name_index", sa.String(length=64), nullable=True),
        sa.Column("payee_id_index", sa.String(length=64), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_by", sa.Uuid(), nullable=True),
        sa.Column("appeals_used", sa.Integer(), nullable=False),
        sa.Column("appeal_reason", sa.Text(), nullable=True),
        sa.Column("ledger_count", sa.Integer(), nullable=False),
        sa.Column("payment_attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["reports.id"], name=op.f("fk_rewards_case_id_reports")),
        sa.ForeignKeyConstraint(["confirmed_by"], ["staff_users.id"], name=op.f("fk_rewards_confirmed_by_staff_users")),
        sa.ForeignKeyConstraint(["decided_by"], ["staff_users.id"], name=op.f("fk_rewards_decided_by_staff_users")),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_rewards_department_id_departments")
        ),
        sa.ForeignKeyConstraint(["paid_by"], ["staff_users.id"], name=op.f("fk_rewards_paid_by_staff_users")),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["reward_policies.id"], name=op.f("fk_rewards_policy_id_reward_policies")
        ),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_rewards_report_id_reports")),
        sa.ForeignKeyConstraint(["reporter_id"], ["reporters.id"], name=op.f("fk_rewards_reporter_id_reporters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rewards")),
        sa.UniqueConstraint("case_id", "stage", name=op.f("uq_rewards_case_id_stage")),
        sa.UniqueConstraint("number", name=op.f("uq_rewards_number")),
    )
    with op.batch_alter_table("rewards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rewards_approved_at"), ["approved_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_rewards_category_code"), ["category_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_rewards_claim_deadline"), ["claim_deadline"], unique=False)
        batch_op.create_index("ix_rewards_department_id_created_at", ["department_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_rewards_paid_at"), ["paid_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_rewards_payee_id_index"), ["payee_id_index"], unique=False)
        batch_op.create_index(batch_op.f("ix_rewards_payee_name_index"), ["payee_name_index"], unique=False)
        batch_op.create_index(batch_op.f("ix_rewards_policy_id"), ["policy_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rewards_report_id"), ["report_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rewards_reporter_id"), ["reporter_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rewards_reporter_key"), ["reporter_key"], unique=False)
        batch_op.create_index("ix_rewards_state_created_at", ["state", "created_at"], unique=False)

    op.create_table(
        "reward_payments",
        sa.Column("reward_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("out_bill_no", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reversal_reason", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["staff_users.id"], name=op.f("fk_reward_payments_recorded_by_staff_users")
        ),
        sa.ForeignKeyConstraint(["reward_id"], ["rewards.id"], name=op.f("fk_reward_payments_reward_id_rewards")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_payments")),
        sa.UniqueConstraint("out_bill_no", name=op.f("uq_reward_payments_out_bill_no")),
        sa.UniqueConstraint("reward_id", "attempt", name=op.f("uq_reward_payments_reward_id_attempt")),
    )
    with op.batch_alter_table("reward_payments", schema=None) as batch_op:
        batch_op.create_index(
            "uq_reward_payments_live",
            ["reward_id"],
            unique=True,
            postgresql_where=sa.text("status = 'succeeded'"),
            sqlite_where=sa.text("status = 'succeeded'"),
        )

    op.create_table(
        "reward_ledger",
        sa.Column("reward_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("account", sa.String(length=10), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("policy_id", sa.Uuid(), nullable=False),
        sa.Column("actor_id", sa.String(length=80), nullable=False),
        sa.Column("reverses_id", sa.Uuid(), nullable=True),
        sa.Column("payment_id", sa.Uuid(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["reports.id"], name=op.f("fk_reward_ledger_case_id_reports")),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["reward_payments.id"], name=op.f("fk_reward_ledger_payment_id_reward_payments")
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["reward_policies.id"], name=op.f("fk_reward_ledger_policy_id_reward_policies")
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"], ["reward_ledger.id"], name=op.f("fk_reward_ledger_reverses_id_reward_ledger")
        ),
        sa.ForeignKeyConstraint(["reward_id"], ["rewards.id"], name=op.f("fk_reward_ledger_reward_id_rewards")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_ledger")),
        sa.UniqueConstraint("reward_id", "sequence", name=op.f("uq_reward_ledger_reward_id_sequence")),
    )
    with op.batch_alter_table("reward_ledger", schema=None) as batch_op:
        batch_op.create_index("ix_reward_ledger_created_at", ["created_at"], unique=False)

    # ### end Alembic commands ###

    policies = sa.table(
        "reward_policies",
        sa.column("id", sa.Uuid),
        sa.column("code", sa.String),
        sa.column("version", sa.Integer),
        sa.column("name", sa.String),
        sa.column("effective_from", sa.Date),
        sa.column("effective_to", sa.Date),
        sa.column("jurisdiction_scope", sa.String),
        sa.column("document", sa.JSON),
        sa.column("created_by", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        policies,
        [
            {
                "id": uuid.uuid4(),
                "code": doc["code"],
                "version": doc["version"],
                "name": doc["name"],
                "effective_from": date.fromisoformat(doc["effective_from"]),
                "effective_to": date.fromisoformat(doc["effective_to"]) if doc["effective_to"] else None,
                "jurisdiction_scope": doc["jurisdiction_scope"],
                "document": doc,
                "created_by": "migration",
                "created_at": now,
            }
            for doc in SHIPPED_POLICIES
        ],
    )


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("reward_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_reward_ledger_created_at")

    op.drop_table("reward_ledger")
    with op.batch_alter_table("reward_payments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_reward_payments_live",
            postgresql_where=sa.text("status = 'succeeded'"),
            sqlite_where=sa.text("status = 'succeeded'"),
        )

    op.drop_table("reward_payments")
    with op.batch_alter_table("rewards", schema=None) as batch_op:
        batch_op.drop_index("ix_rewards_state_created_at")
        batch_op.drop_index(batch_op.f("ix_rewards_reporter_key"))
        batch_op.drop_index(batch_op.f("ix_rewards_reporter_id"))
        batch_op.drop_index(batch_op.f("ix_rewards_report_id"))
        batch_op.drop_index(batch_op.f("ix_rewards_policy_id"))
        batch_op.drop_index(batch_op.f("ix_rewards_payee_name_index"))
        batch_op.drop_index(batch_op.f("ix_rewards_payee_id_index"))
        batch_op.drop_index(batch_op.f("ix_rewards_paid_at"))
        batch_op.drop_index("ix_rewards_department_id_created_at")
        batch_op.drop_index(batch_op.f("ix_rewards_claim_deadline"))
        batch_op.drop_index(batch_op.f("ix_rewards_category_code"))
        batch_op.drop_index(batch_op.f("ix_rewards_approved_at"))

    op.drop_table("rewards")
    op.drop_table("reward_policies")
    # ### end Alembic commands ###
