"""Every route × every kind of caller, against a case, an upload and a reward of one reporter (issue 7's
authorization matrix, first part).

For each route the table below says who may succeed. Reads (GET) are checked both ways: those listed get a 2xx,
everyone else a 401, 403 or 404, and a list answered to someone who may not see the case never names it. Writes
are sent with an empty body: nobody outside the table may get a 2xx from one (most are refused before the body
is read; an empty body is refused after). Public routes are listed as such. A route missing from the table fails
the test, so a new route has to be placed in it.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.api.rewards.flow import new_case, rewards_of, verify
from tests.support.api import Api

REPORTERS = {"alice", "mallory"}  # alice owns the case, the upload and the reward; mallory is another reporter
STAFF = {"hotline", "dispatcher", "inspector", "fire-inspector", "head", "fire-head", "auditor", "payer", "admin"}
EVERYONE = {"anonymous"} | REPORTERS | STAFF
ALL_REPORTERS, ALL_STAFF = REPORTERS, STAFF
EMERGENCY = {"inspector", "head"}  # the department the case is assigned to
PUBLIC = EVERYONE

# Who may read each GET route with the world set up below (2xx); everyone else must be refused.
READS: dict[str, set[str]] = {
    "get_staff_me": ALL_STAFF,
    "get_upload": {"alice"},
    "list_my_reports": ALL_REPORTERS,
    "get_my_report": {"alice"},
    "get_my_report_timeline": {"alice"},
    "list_categories": PUBLIC,
    # Dispatchers read the reference data to route and assign.
    "list_jurisdictions": {"admin", "dispatcher"},
    "list_departments": {"admin", "dispatcher"},
    "list_routing_rules": {"admin", "dispatcher"},
    "list_reference_changes": {"admin"},
    # Reward auditors (both) read cases to audit their rewards.
    "get_case": {"dispatcher", "auditor", "payer", "admin"} | EMERGENCY,
    "get_case_timeline": {"dispatcher", "auditor", "payer", "admin"} | EMERGENCY,
    "list_triage": {"dispatcher"},
    "list_cases": {"dispatcher", "auditor", "payer", "admin", "inspector", "head", "fire-inspector", "fire-head"},
    "list_supervision": {"dispatcher"},
    "list_deadline_policies": {"admin"},
    "list_audit_log": {"admin"},
    "list_subscription_templates": PUBLIC,  # template ids, which the mini-program needs before it asks
    "search_rewards": {"auditor", "payer", "head", "fire-head"},
    "reward_totals": {"auditor", "payer", "head", "fire-head"},
    "reward_ledger": {"auditor", "payer", "head", "fire-head"},
    "export_rewards_csv": {"auditor", "payer", "head", "fire-head"},
    "export_rewards_xlsx": {"auditor", "payer", "head", "fire-head"},
    "get_reward": {"auditor", "payer", "head"},
    "list_my_rewards": ALL_REPORTERS,
    "get_my_reward": {"alice"},
    "list_reward_policies": {"admin"},
    "statistics_counts": {"dispatcher", "head", "fire-head", "admin"},
    "statistics_rates": {"dispatcher", "head", "fire-head", "admin"},
    "statistics_durations": {"dispatcher", "head", "fire-head", "admin"},
    "statistics_overdue": {"dispatcher", "head", "fire-head", "admin"},
    "statistics_rewards": {"dispatcher", "head", "fire-head", "admin"},
    "statistics_campaign": {"dispatcher", "head", "fire-head", "admin"},
    "statistics_campaign_xlsx": {"dispatcher", "head", "fire-head", "admin"},
    "statistics_campaign_csv": {"dispatcher", "head", "fire-head", "admin"},
    "get_publication": {"dispatcher"},  # answers 404 publication_not_found: the case is not published
    "list_public_cases": PUBLIC,
    "open311_discovery": PUBLIC,
    "open311_list_services": PUBLIC,
    "open311_get_service_definition": PUBLIC,
    "open311_list_requests": PUBLIC,
    "list_partners": {"admin"},
    "healthz": PUBLIC,
    "readyz": PUBLIC,
}
# Who could succeed at each write with a proper body (an empty one is what is sent).
WRITES: dict[str, set[str]] = {
    "login_reporter_wechat": PUBLIC,
    "login_staff": PUBLIC,
    "upload_photo": REPORTERS | {"hotline", "dispatcher", "inspector", "fire-inspector", "head", "fire-head"},
    "submit_report": REPORTERS | {"hotline", "dispatcher"},
    "lookup_report": PUBLIC,
    "import_jurisdictions": {"admin"},
    "create_department": {"admin"},
    "create_category": {"admin"},
    "create_routing_rule": {"admin"},
    "retire_routing_rule": {"admin"},
    "preview_routing": {"admin", "dispatcher"},
    "reroute_case": {"dispatcher"},
    "accept_case": {"dispatcher"},
    "reject_case": {"dispatcher"},
    "merge_case": {"dispatcher"},
    "assign_case": {"dispatcher"},
    "supervise_case": {"dispatcher"},
    "return_case": EMERGENCY,
    "start_verification": {"inspector"},
    "verify_case": {"inspector"},
    "record_penalty": EMERGENCY,
    "order_rectification": {"inspector"},
    "report_rectified": {"inspector"},
    "review_rectification": EMERGENCY,
    "close_case": {"inspector"},
    "request_extension": {"inspector"},
    "approve_extension": {"head"},
    "reveal_identity": {"dispatcher", "auditor", "payer"},  # payer is a reward auditor too
    "appeal_report": {"alice"},
    "rate_report": {"alice"},
    "load_calendar_year": {"admin"},
    "set_deadline_policy": {"admin"},
    "record_subscriptions": ALL_REPORTERS,
    "confirm_reward": {"head"},
    "approve_reward": {"auditor", "payer"},
    "reject_reward": {"auditor", "payer"},
    "pay_reward": {"auditor", "payer"},
    "reverse_reward_payment": {"auditor", "payer"},
    "reveal_payee": {"auditor", "payer"},
    "claim_my_reward": {"alice"},
    "appeal_my_reward": {"alice"},
    "claim_reward_by_code": PUBLIC,
    "add_reward_policy": {"admin"},
    "publish_case": {"dispatcher"},
    "withdraw_publication": {"dispatcher"},
    "open311_create_request": PUBLIC,  # the API key in the form is the credential
    "create_partner": {"admin"},
    "revoke_partner": {"admin"},
}
SKIPPED = {
    "get_media",  # a signed URL is the credential: tests/contract/test_storage.py
    "get_public_case",  # public by design: tests/api/publication
    "open311_get_request",  # public by design: tests/api/open311
}


def _world(api: Api) -> dict[str, str]:
    reporter, receipt = new_case(api, "alice")
    verify(api, receipt["id"])
    [reward] = rewards_of(api, receipt["number"])
    uploads = api.client.get(f"/v1/me/reports/{receipt['id']}", headers=reporter).json()["photos"]
    return {
        "report_id": receipt["id"],
        "reward_id": reward["id"],
        "upload_id": uploads[0]["id"],
        "case_number": receipt["number"],
    }


def _headers(api: Api, who: str) -> dict[str, str]:
    if who == "anonymous":
        return {}
    if who in REPORTERS:
        return api.reporter(who)
    return api.staff(who)


def _path(template: str, world: dict[str, str]) -> str:
    values = {
        "report_id": world["report_id"],
        "reward_id": world["reward_id"],
        "upload_id": world["upload_id"],
        "fmt": "json",
        "service_code": "gas",
    }

    def fill(match: re.Match[str]) -> str:
        return values.get(match.group(1), str(uuid.uuid4()))

    return re.sub(r"\{(\w+)\}", fill, template)


def test_every_route_and_every_caller(api: Api) -> None:
    world = _world(api)
    spec = api.client.get("/openapi.json").json()
    routes = [
        (operation["operationId"], method.upper(), path)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]
    operations = {operation for operation, _, _ in routes}
    assert operations == set(READS) | set(WRITES) | SKIPPED, "place every route in the table"
    headers = {who: _headers(api, who) for who in EVERYONE}
    unexpected: list[str] = []
    checked = 0
    for operation, method, template in routes:
        if operation in SKIPPED:
            continue
        path = _path(template, world)
        for who in sorted(EVERYONE):
            request_headers = {**headers[who], "Idempotency-Key": uuid.uuid4().hex}
            if method == "GET":
                response = api.client.get(path, headers=request_headers)
            else:
                response = api.client.request(method, path, headers=request_headers, json={})
            checked += 1
            unexpected += _judge(operation, method, who, response, world)
    assert checked > 1000
    assert unexpected == [], "\n".join(unexpected)


def _judge(operation: str, method: str, who: str, response: Any, world: dict[str, str]) -> list[str]:
    status = response.status_code
    where = f"{method} {operation} as {who}: {status} {response.text[:160]}"
    if status >= 500:
        return [f"server error: {where}"]
    if method == "GET":
        allowed = READS[operation]
        if who in allowed and operation == "get_publication" and status == 404:
            return []
        if who in allowed and not 200 <= status < 300:
            return [f"refused a caller who may read: {where}"]
        if who not in allowed and status not in (401, 403, 404):
            return [f"answered a caller who may not read: {where}"]
        sees_the_case = who in {"alice", "dispatcher", "auditor", "payer", "admin"} | EMERGENCY
        if 200 <= status < 300 and not sees_the_case and operation not in ("list_public_cases",):
            body = response.text
            if world["report_id"] in body or world["reward_id"] in body or world["case_number"] in body:
                return [f"named a case the caller may not see: {where}"]
        return []
    if 200 <= status < 300 and who not in WRITES[operation]:
        return [f"a write succeeded for a caller who may not: {where}"]
    return []
