"""A check schemathesis loads through `hooks` in schemathesis.toml: what a schema-valid request may be refused for.

schemathesis's own `positive_data_acceptance` is configured there to let a schema-valid request be refused with
422 (and, on /open311, the spec's 400). This check narrows that back down: such a refusal must carry one of the
error codes below, each a rule a schema cannot state (a reference to data that may not exist, a rule across two
parameters). Any other code on a schema-valid request (`validation_error` above all) means the schema admits what
the server refuses, and fails the run.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis.specs.openapi.checks import is_unexpected_http_status_case

DATA_DEPENDENT_CODES: dict[str, str] = {
    # Keyset cursors are ours to issue (base64url of a position); any string is schema-valid, few decode.
    "invalid_cursor": "a cursor the server did not issue",
    # Reference data an admin adds to: the schema cannot list the codes that exist.
    "unknown_category": "a category code that does not exist",
    "unknown_department": "a department code that does not exist",
    "unknown_jurisdiction": "a jurisdiction code that does not exist",
    # Statistics periods: the start not after the end (which defaults to today), at most three years, and the
    # granularity's own limit (92 days by day, 184 by week): rules across parameters and the date.
    "invalid_period": "a period the wrong way round or longer than three years",
    "period_too_long_for_granularity": "a daily or weekly series over too long a period",
    # Open311's start_date and end_date: the same rules, in the spec's 400.
    "date_range_reversed": "an Open311 end_date before its start_date",
    "date_range_too_long": "an Open311 date range over 90 days",
    "unknown_service_code": "an Open311 service code that is no category",
    # Files are bytes to a schema: whether they are an image we decode, or GeoJSON, is in their content.
    "not_an_image": "a file that is not an image",
    "unsupported_image_type": "an image of a format we do not take",
    "image_corrupt": "an image that does not decode",
    "image_too_complex": "a JPEG with more scans than we decode",
    "invalid_geojson": "a file that is not GeoJSON of jurisdictions",
    # Open311's partner form: the same character rule as DATA_DEPENDENT_VALIDATION_TYPES, in the spec's 400.
    "control_characters": "text with a control, format or unassigned character",
    # Subscription templates are configured per deployment (GET /v1/me/subscriptions/templates lists them), and an
    # accepted one must be among those asked: configuration, and a rule across two fields.
    "unknown_template": "a template key this deployment has not configured",
    "opt_in_not_requested": "an accepted template that was not asked",
    # Admin documents whose rules span fields: a holiday in its year and not also a working day; a reward policy's
    # rules (each kind's own fields, a minimum not above its maximum, an end not before the start), which the schema
    # states only at the top level (docs/decisions.md).
    "invalid_year_schedule": "a calendar year whose dates fall outside it or are both holiday and working day",
    "invalid_reward_policy": "a reward policy whose rules do not hold together",
    # The facts a confirmation states must agree with each other and with the case: deaths concealed need the
    # accident's final level, and only a concealed-accident case has them; a hazard level must be the case's kind.
    "invalid_reward_facts": "reward facts that contradict each other or the case's kind",
    # The schema states 17 digits and a check character; whether the check character is right is arithmetic.
    "invalid_resident_id": "a resident id number whose check character is wrong",
}
# A validation_error is data-dependent only when every problem in it is of one of these types (app/intake/schemas.py):
# a character's Unicode category (control, format, unassigned), or a check character (统一社会信用代码).
DATA_DEPENDENT_VALIDATION_TYPES = frozenset({"control_characters", "check_character"})


class DataIndependentRefusal(AssertionError):
    pass


@schemathesis.check
def positive_data_refused_only_on_data(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request refused with 400 or 422 names a data-dependent code."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or is_unexpected_http_status_case(case):
        return None
    if response.status_code not in (400, 422):
        return None
    code = error_code(response.content)
    if code == "validation_error" and validation_types(response.content) <= DATA_DEPENDENT_VALIDATION_TYPES:
        return True
    if code not in DATA_DEPENDENT_CODES:
        raise DataIndependentRefusal(
            f"A schema-valid request was refused with {response.status_code} `{code}`, which is not one of the "
            f"data-dependent refusals ({', '.join(sorted(DATA_DEPENDENT_CODES))}): the schema admits what the "
            "server refuses"
        )
    return True


def error_code(content: bytes) -> str | None:
    """The code of our error shape (`{"error": {"code"}}`) or of Open311's (`[{"code"}]`, or its XML)."""
    try:
        body = json.loads(content)
    except ValueError:
        text = content.decode("utf-8", "replace")
        start = text.find("<code>")
        return text[start + 6 : text.find("</code>")] if start >= 0 else None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("code")
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0].get("code")
    return None


def validation_types(content: bytes) -> set[str]:
    details = json.loads(content)["error"].get("details") or [{}]
    return {str(problem.get("type")) for problem in details}
