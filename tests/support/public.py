"""Cases taken to a verified closure and published, for the exposure board and Open311 tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.geo.datum import Datum, to_datum
from tests.support.api import Api, exact_coordinates
from tests.support.identity_scan import SCAN
from tests.support.images import small_jpeg

# A precise point in 英城街道（示意）, GCJ-02: it must never appear in a public answer, nor its WGS-84 equivalent.
PRECISE = {"longitude": 113.41237, "latitude": 24.17893, "datum": "gcj02", "address": "英城街道和平路 18 号 3 楼"}


@dataclass
class ClosedCase:
    id: str
    number: str
    reporter: dict[str, str]
    reporter_photo: str
    inspection_photo: str
    after_photo: str


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def close_verified_case(
    api: Api,
    name: str = "alice",
    *,
    seed: int = 1,
    outcome: str = "true",
    filer: dict[str, str] | None = None,
    **overrides: Any,
) -> ClosedCase:
    """A case filed by a reporter (or by ``filer``, a hotline operator), verified (true or partly true) with an
    inspection photo, rectified and closed."""
    reporter = filer or api.reporter(name)
    reporter_photo = api.upload_id(reporter, data=small_jpeg(seed))
    location = overrides.pop("location", PRECISE)
    receipt = ok(
        api.submit(reporter, [reporter_photo], category="hazardous_chemicals", location=location, **overrides), 201
    )
    remember_private_facts(location, receipt["number"], overrides.get("description"))
    inspection_photo, after_photo = verify_and_close(api, receipt["id"], seed=seed, outcome=outcome)
    return ClosedCase(receipt["id"], receipt["number"], reporter, reporter_photo, inspection_photo, after_photo)


def remember_private_facts(location: dict[str, Any], number: str | None, description: str | None) -> None:
    """What staff may see and the public never: the exact point (either datum), the address, the report number,
    the reporter's own words."""
    wgs84 = to_datum(location["longitude"], location["latitude"], Datum(location["datum"]), Datum.WGS84)
    SCAN.coordinates.update(exact_coordinates(location["longitude"], location["latitude"], *wgs84))
    SCAN.not_public.add(description or Api.report_body([])["description"])
    if number:
        SCAN.not_public.add(number)
    if location.get("address"):
        SCAN.not_public.add(location["address"])


def verify_and_close(api: Api, case_id: str, *, seed: int = 1, outcome: str = "true") -> tuple[str, str]:
    """Accept, assign, verify with an inspection photo, order and review rectification: the two staff photos."""
    inspector, head = api.staff("inspector"), api.staff("head")
    api.accept_and_assign(case_id)
    ok(api.command(inspector, case_id, "start-verification"))
    inspection_photo = api.upload_id(inspector, data=small_jpeg(seed + 1000))
    verify = {
        "outcome": outcome,
        "hazard_level": "major",
        "enterprise": {"name": "英德某化工有限公司"},
        "findings": "现场查实：储罐区未设置紧急切断装置",
        "attachments": [inspection_photo],
    }
    ok(api.command(inspector, case_id, "verify", verify))
    ok(api.command(inspector, case_id, "order-rectification", {"measures": "七日内加装紧急切断装置"}))
    after_photo = api.upload_id(inspector, data=small_jpeg(seed + 2000))
    ok(api.command(inspector, case_id, "report-rectified", {"after_photos": [after_photo]}))
    ok(api.command(head, case_id, "review-rectification", {"passed": True}))
    return inspection_photo, after_photo


def publish(
    api: Api, case_id: str, summary: str = "某化工企业储罐区未设置紧急切断装置，已责令整改到位。", **body: Any
) -> Any:
    return api.client.post(
        f"/v1/staff/cases/{case_id}/publish", headers=api.staff("dispatcher"), json={"summary": summary, **body}
    )
