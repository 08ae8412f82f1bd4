"""Open311 GeoReport v2: discovery, services, the published cases as requests, partner intake; JSON and XML."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

from tests.support.api import Api, random_uuid
from tests.support.identity_scan import SCAN
from tests.support.public import PRECISE, close_verified_case, ok, publish, remember_private_facts, verify_and_close

FORM = {"content-type": "application/x-www-form-urlencoded"}


def _xml(response: Any, status: int = 200) -> ElementTree.Element:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    return ElementTree.fromstring(response.content)


def _spec_error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    if response.headers["content-type"].startswith("text/xml"):
        root = ElementTree.fromstring(response.content)
        assert root.tag == "errors" and [e.tag for e in root] == ["error"]
        assert root.findtext("error/code") == code, response.text
        return root.findtext("error/description") or ""
    [error] = response.json()
    assert error["code"] == code, error
    return str(error["description"])


def _partner_key(api: Api, name: str = "某市 12345 平台") -> str:
    created = ok(api.client.post("/v1/admin/partners", headers=api.staff("admin"), json={"name": name}), 201)
    return str(created["api_key"])


def _form(partner_key: str, **fields: str) -> dict[str, str]:
    return {
        "api_key": partner_key,
        "service_code": "hazardous_chemicals",
        "lat": "24.18166",
        "long": "113.40731",
        "description": "加油站旁边有人私自倒卖散装汽油",
        "attribute[hazard_kind]": "illegal_production",
        **fields,
    }


def test_discovery_and_services_in_json_and_xml(api: Api) -> None:
    discovery = ok(api.client.get("/open311/discovery.json"))
    [endpoint] = discovery["endpoints"]
    assert endpoint["url"] == "http://testserver/open311/v2" and endpoint["specification"].endswith("GeoReport_v2")
    root = _xml(api.client.get("/open311/discovery.xml"))
    assert root.tag == "discovery"
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == ["text/xml", "application/json"]

    services = ok(api.client.get("/open311/v2/services.json"))
    gas = next(s for s in services if s["service_code"] == "gas")
    assert gas == {
        "service_code": "gas",
        "service_name": "燃气",
        "description": "燃气领域的安全隐患或非法违法生产经营行为举报",
        "metadata": True,
        "type": "realtime",
        "keywords": "燃气",
        "group": "安全生产",
    }
    root = _xml(api.client.get("/open311/v2/services.xml"))
    assert root.tag == "services" and len(root) == len(services)
    assert root.find("service/metadata").text == "true"  # type: ignore[union-attr]

    definition = ok(api.client.get("/open311/v2/services/gas.json"))
    kinds = definition["attributes"][0]
    assert kinds["code"] == "hazard_kind" and kinds["required"] is True and kinds["datatype"] == "singlevaluelist"
    assert {v["key"] for v in kinds["values"]} == {"accident_hazard", "illegal_production", "concealed_accident"}
    root = _xml(api.client.get("/open311/v2/services/gas.xml"))
    assert root.tag == "service_definition"
    assert root.findtext("attributes/attribute/values/value/key") == "accident_hazard"

    _spec_error(api.client.get("/open311/v2/services/nothing.json"), 404, "service_not_found")
    _spec_error(api.client.get("/open311/v2/services/nothing.xml"), 404, "service_not_found")
    _spec_error(api.client.get("/open311/v2/services.html"), 404, "unknown_resource")
    _spec_error(api.client.get("/open311/v2/tokens/abc.xml"), 404, "unknown_resource")
    _spec_error(api.client.get("/open311/v2/services/" + "x" * 50 + ".json"), 400, "invalid_parameter")


def test_requests_are_the_published_cases(api: Api) -> None:
    published = close_verified_case(api, "alice", seed=21)
    unpublished = close_verified_case(api, "bob", seed=22)
    ok(publish(api, published.id))
    assert ok(api.client.get("/open311/v2/requests.json")) == ok(
        api.client.get(f"/open311/v2/requests/{published.id}.json")
    )
    [request] = ok(api.client.get("/open311/v2/requests.json"))
    assert request["service_request_id"] == published.id
    assert request["status"] == "closed" and request["status_notes"] == "经核查属实，重大事故隐患，已整改到位并办结"
    assert (request["service_code"], request["service_name"]) == ("hazardous_chemicals", "危险化学品")
    assert request["description"].startswith("某化工企业")
    assert request["agency_responsible"] == "英德市应急管理局"
    assert request["address"] == "英城街道（示意）" and (request["lat"], request["long"]) == (24.19, 113.40)
    assert request["requested_datetime"].endswith("+08:00") and request["expected_datetime"] is None
    assert "/v1/media/" in request["media_url"]

    root = _xml(api.client.get("/open311/v2/requests.xml"))
    assert root.tag == "service_requests" and [r.tag for r in root] == ["request"]
    assert root.findtext("request/service_request_id") == published.id
    assert root.findtext("request/long") == "113.4" and root.findtext("request/zipcode") == ""
    assert _xml(api.client.get(f"/open311/v2/requests/{published.id}.xml")).findtext("request/status") == "closed"

    _spec_error(api.client.get(f"/open311/v2/requests/{unpublished.id}.json"), 404, "request_not_found")
    _spec_error(api.client.get(f"/open311/v2/requests/{unpublished.id}.xml"), 404, "request_not_found")
    _spec_error(api.client.get("/open311/v2/requests/2026-441881-000001.json"), 404, "request_not_found")
    both = ok(
        api.client.get("/open311/v2/requests.json", params={"service_request_id": f"{published.id},{unpublished.id}"})
    )
    assert [r["service_request_id"] for r in both] == [published.id]

    def listed(**params: str) -> list[str]:
        return [r["service_request_id"] for r in ok(api.client.get("/open311/v2/requests.json", params=params))]

    assert listed(status="closed") == [published.id] and listed(status="open") == []
    assert listed(status="open,closed") == [published.id]
    assert listed(service_code="gas") == [] and listed(service_code="hazardous_chemicals") == [published.id]
    assert listed(start_date="2020-01-01T00:00:00+08:00", end_date="2020-02-01T00:00:00+08:00") == []
    assert listed(start_date="2026-01-01T00:00:00Z") == [published.id]

    def refused(code: str, **params: str) -> str:
        return _spec_error(api.client.get("/open311/v2/requests.json", params=params), 400, code)

    refused("invalid_parameter", status="pending")
    refused("unknown_service_code", service_code="nothing")
    refused("date_range_too_long", start_date="2026-01-01T00:00:00+08:00", end_date="2026-06-01T00:00:00+08:00")
    refused("date_range_reversed", start_date="2026-06-01T00:00:00+08:00", end_date="2026-01-01T00:00:00+08:00")
    assert "时区" in refused("invalid_parameter", start_date="2026-06-01T00:00:00")
    refused("invalid_parameter", end_date="yesterday")
    refused("invalid_parameter", service_request_id="1,2,3")
    refused("invalid_parameter", service_request_id=",".join(random_uuid() for _ in range(101)))
    bad = api.client.get("/open311/v2/requests.xml", params={"status": "pending"})
    _spec_error(bad, 400, "invalid_parameter")


def test_open311_answers_are_cacheable(api: Api) -> None:
    case = close_verified_case(api)
    ok(publish(api, case.id))
    for url in ("/open311/v2/requests.xml", f"/open311/v2/requests/{case.id}.json", "/open311/v2/services.json"):
        first = api.client.get(url)
        assert first.headers["cache-control"] == "public, max-age=60"
        again = api.client.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


def test_a_partner_files_a_report_with_its_key(api: Api) -> None:
    admin = api.staff("admin")
    for who in ("dispatcher", "hotline", "auditor"):
        denied = api.client.post("/v1/admin/partners", headers=api.staff(who), json={"name": "某平台"})
        assert denied.status_code == 403
    key = _partner_key(api)
    partners = ok(api.client.get("/v1/admin/partners", headers=admin))
    assert [p["name"] for p in partners] == ["某市 12345 平台"] and key not in str(partners)
    assert key.startswith(partners[0]["key_hint"])

    form = _form(key, first_name="先生", last_name="王", phone="13912345678", email="wang@example.com")
    SCAN.secrets.update({"王 先生", "13912345678", "wang@example.com"})
    remember_private_facts({"longitude": 113.40731, "latitude": 24.18166, "datum": "wgs84"}, None, form["description"])
    response = api.client.post("/open311/v2/requests.json", data=form)
    [receipt] = ok(response, 201)
    assert set(receipt) == {"service_request_id", "service_notice", "account_id"}
    case_id = receipt["service_request_id"]

    dispatcher = api.staff("dispatcher")
    case = ok(api.client.get(f"/v1/staff/cases/{case_id}", headers=dispatcher))
    assert case["channel"] == "partner" and case["photos"] == []
    assert case["location"]["datum"] == "wgs84" and case["hazard_kind"] == "illegal_production"
    assert "13912345678" not in str(case) and "wang@example.com" not in str(case)
    revealed = ok(
        api.client.post(
            f"/v1/staff/cases/{case_id}/reveal-identity", headers=dispatcher, json={"reason": "核实举报内容需要回访"}
        )
    )
    assert revealed["name"] == "王 先生" and revealed["phone"] == "13912345678" and revealed["openid"] is None

    xml = _xml(api.client.post("/open311/v2/requests.xml", data=_form(key, description="另一处非法储存汽油")), 201)
    assert xml.tag == "service_requests" and xml.findtext("request/service_request_id")

    log = ok(api.client.get("/v1/admin/audit-log", headers=admin, params={"action": "open311_submit"}))
    assert {entry["target_id"] for entry in log["items"]} >= {case_id}

    partner_id = partners[0]["id"]
    assert ok(api.client.post(f"/v1/admin/partners/{partner_id}/revoke", headers=admin))["revoked_at"]
    revoke_again = api.client.post(f"/v1/admin/partners/{partner_id}/revoke", headers=admin)
    assert revoke_again.status_code == 409 and revoke_again.json()["error"]["code"] == "partner_already_revoked"
    _spec_error(api.client.post("/open311/v2/requests.json", data=_form(key)), 403, "invalid_api_key")


def test_bad_partner_requests_are_refused_in_the_spec_format(api: Api) -> None:
    key = _partner_key(api)

    def refused(status: int, code: str, fmt: str = "json", **fields: str) -> str:
        form = {k: v for k, v in _form(key, **fields).items() if v != "-"}
        return _spec_error(api.client.post(f"/open311/v2/requests.{fmt}", data=form), status, code)

    refused(403, "invalid_api_key", api_key="-")
    refused(403, "invalid_api_key", "xml", api_key="p311-wrong")
    assert refused(400, "media_url_not_supported", media_url="http://example.com/a.jpg")
    refused(400, "location_required", lat="-", address_string="英德市和平路")
    assert "lat" in refused(400, "invalid_parameter", lat="north")
    refused(400, "invalid_parameter", "xml", lat="nan")
    assert "lat" in refused(400, "invalid_parameter", lat="95")
    refused(400, "unknown_category", service_code="nothing")
    assert "description" in refused(400, "invalid_parameter", description="短")
    assert "attribute[hazard_kind]" in refused(400, "invalid_parameter", **{"attribute[hazard_kind]": "-"})
    assert "phone" in refused(400, "invalid_parameter", phone="call me")
    assert "observed_at" in refused(400, "invalid_parameter", **{"attribute[observed_at]": "2026-11-01T08:00:00"})

    as_json = api.client.post("/open311/v2/requests.json", json=_form(key))
    _spec_error(as_json, 400, "form_required")
    huge = api.client.post("/open311/v2/requests.json", content=b"a=" + b"x" * 20_000, headers=FORM)
    _spec_error(huge, 400, "payload_too_large")
    broken = api.client.post("/open311/v2/requests.xml", content=b"api_key=\xff\xfe", headers=FORM)
    _spec_error(broken, 400, "form_required")
    _spec_error(api.client.post("/open311/v2/requests.csv", data=_form(key)), 404, "unknown_resource")


def test_partner_keys_from_the_command_line(api: Api, settings: Any) -> None:
    from tests.api.identity.test_cli import _cli

    created = _cli(settings, "create-partner", "--name", "某县 12345 平台")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().rsplit("：", 1)[-1]
    assert key.startswith("p311-")
    ok(api.client.post("/open311/v2/requests.json", data=_form(key)), 201)
    assert _cli(settings, "create-partner", "--name", "x").returncode == 2


def test_no_public_answer_holds_a_reporter_or_an_exact_point(api: Api) -> None:
    """Every public route, in every format, over cases filed by the mini-program, the hotline and a partner."""
    by_app = close_verified_case(api, "alice", seed=31, hide_identity=True)
    hotline = api.staff("hotline")
    caller = {"name": "李来电", "phone": "13800001111"}
    by_phone = close_verified_case(api, seed=32, filer=hotline, channel="hotline", caller=caller)
    key = _partner_key(api)
    form = _form(key, first_name="伙伴", last_name="赵", phone="13700002222", long=str(PRECISE["longitude"] + 0.001))
    SCAN.secrets.update({"赵 伙伴", "13700002222"})  # a partner's caller: no department nor the public sees them
    [receipt] = ok(api.client.post("/open311/v2/requests.json", data=form), 201)
    by_partner = receipt["service_request_id"]
    number = ok(api.client.get(f"/v1/staff/cases/{by_partner}", headers=api.staff("dispatcher")))["number"]
    remember_private_facts(
        {"longitude": float(form["long"]), "latitude": float(form["lat"]), "datum": "wgs84"},
        number,
        form["description"],
    )
    verify_and_close(api, by_partner, seed=33)
    for case_id in (by_app.id, by_phone.id, by_partner):
        ok(publish(api, case_id))

    identities = {"openid-alice", *caller.values(), "赵 伙伴", "13700002222", by_app.number, by_phone.number, number}
    assert identities <= SCAN.secrets | SCAN.not_public
    urls = ["/v1/public/cases", "/open311/discovery.json", "/open311/discovery.xml"]
    for fmt in ("json", "xml"):
        urls += [f"/open311/v2/requests.{fmt}", f"/open311/v2/services.{fmt}"]
        urls += [f"/open311/v2/requests/{case_id}.{fmt}" for case_id in (by_app.id, by_phone.id, by_partner)]
    urls += [f"/v1/public/cases/{case_id}" for case_id in (by_app.id, by_phone.id, by_partner)]
    bodies = []
    for url in urls:
        response = api.client.get(url)
        assert response.status_code == 200, (url, response.text)
        bodies.append((url, response.text))
    assert len(ok(api.client.get("/v1/public/cases"))["items"]) == 3
    forbidden = SCAN.secrets | SCAN.not_public | SCAN.coordinates
    leaks = [(url, value) for url, body in bodies for value in forbidden if value in body]
    assert leaks == []
    # The scan would see them: the staff view of the same case holds the number and the point.
    staff_view = api.client.get(f"/v1/staff/cases/{by_app.id}", headers=api.staff("dispatcher")).text
    assert by_app.number in staff_view and repr(PRECISE["longitude"]) in staff_view


def test_only_partners_file_on_the_partner_channel(api: Api) -> None:
    for headers in (api.reporter("hank"), api.staff("hotline")):
        response = api.submit(headers, channel="partner")
        assert response.status_code == 403 and response.json()["error"]["code"] == "channel_not_allowed"
