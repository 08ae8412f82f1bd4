"""Rules the schema now states, found by schemathesis where the schema admitted what the server refused (or the
other way round). Each is checked where the server enforces it."""

from __future__ import annotations

from tests.api.rewards.flow import PAYEE
from tests.support.api import Api


def test_query_dates_are_iso_text_not_seconds_since_1970(api: Api) -> None:
    # `date_to=0` read as 1970-01-01 and `submitted_to=0.5` as half a second past 1970: numbers are refused.
    dispatcher = api.staff("dispatcher")
    for path, params in (
        ("/v1/staff/statistics/counts", {"date_to": "0"}),
        ("/v1/staff/statistics/rates", {"date_from": "20261101"}),
        ("/v1/staff/cases", {"submitted_to": "0.5"}),
        ("/v1/staff/cases", {"submitted_from": "2026-11-01"}),
    ):
        response = api.client.get(path, headers=dispatcher, params=params)
        assert response.status_code == 422, (path, params, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error" and error["field"] == next(iter(params)), error
    ok = api.client.get("/v1/staff/cases", headers=dispatcher, params={"submitted_from": "2026-11-01T00:00:00+08:00"})
    assert ok.status_code == 200, ok.text
    assert api.client.get(
        "/v1/staff/statistics/counts", headers=dispatcher, params={"date_to": "2026-11-27"}
    ).is_success


def test_rules_no_schema_can_state_have_their_own_error_type(api: Api) -> None:
    # A control character and a wrong check character stay validation errors, with a type of their own.
    reporter = api.reporter("ruth")
    upload = api.upload_id(reporter)
    cases = (
        ({"description": "有控制字符\x07的描述内容"}, "control_characters"),
        ({"enterprise": {"name": "某化工厂", "credit_code": "91441881MA4UXXXXX1"}}, "check_character"),
        ({"enterprise": {"name": "某化工厂", "credit_code": "9144188"}}, "string_pattern_mismatch"),
    )
    for overrides, kind in cases:
        response = api.submit(reporter, [upload], **overrides)
        assert response.status_code == 422, response.text
        assert [problem["type"] for problem in response.json()["error"]["details"]] == [kind], response.text


def test_payee_numbers_have_the_form_the_schema_states(api: Api) -> None:
    body = {"number": "2026-441881-000001", "query_code": "K7M2Q9XW"}
    for field, value in (("account_number", ""), ("account_number", "1234 567"), ("id_number", "1101051949123100A")):
        response = api.client.post(
            "/v1/rewards/claim-by-code",
            headers={"Idempotency-Key": "claim-1"},
            json={**PAYEE, **body, field: value},
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field
    spaced = api.client.post(
        "/v1/rewards/claim-by-code",
        headers={"Idempotency-Key": "claim-2"},
        json={**PAYEE, **body, "account_number": "6228 4800 1234 5678 901"},
    )
    assert spaced.status_code == 404, spaced.text  # well formed; no such report


def test_a_whole_number_written_as_a_float_is_an_integer(api: Api) -> None:
    # JSON Schema's integer admits 5.0; strict fields still refuse "5", true and 5.5.
    admin = api.staff("admin")
    for days, status in ((5.0, 200), (5.5, 422), ("5", 422), (True, 422)):
        body = {"step": "acceptance", "days": days, "count": "calendar"}
        response = api.client.put("/v1/admin/deadline-policies", headers=admin, json=body)
        assert response.status_code == status, (days, response.text)
    assert response.json()["error"]["field"] == "days"


def test_category_filters_are_category_codes(api: Api) -> None:
    # Found by schemathesis on PostgreSQL: `category=D9%00` reached the database and failed there as a 500.
    for who, path in (
        ("dispatcher", "/v1/staff/statistics/durations"),
        ("dispatcher", "/v1/staff/cases"),
        ("auditor", "/v1/staff/rewards"),
    ):
        response = api.client.get(path, headers=api.staff(who), params={"category": "D9\x00"})
        assert response.status_code == 422 and response.json()["error"]["field"] == "category", (path, response.text)


def test_reference_data_names_refuse_control_characters(api: Api) -> None:
    # Found by schemathesis on PostgreSQL: a NUL in a category name failed there as a 500.
    admin = api.staff("admin")
    response = api.client.post("/v1/admin/categories", headers=admin, json={"code": "nul-test", "name": "a\x00b"})
    assert response.status_code == 422, response.text
    assert [problem["type"] for problem in response.json()["error"]["details"]] == ["control_characters"]
