"""The spec's state mapping and its two formats, without a database."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest

from app.open311 import formats
from app.open311.errors import UnknownResource
from app.open311.service import open311_status
from app.workflow.transitions import CaseState


def test_finished_states_are_closed_and_the_rest_open() -> None:
    closed = {s for s in CaseState if open311_status(s) == "closed"}
    assert closed == {CaseState.CLOSED, CaseState.REJECTED, CaseState.MERGED, CaseState.VERIFIED_FALSE}
    assert {open311_status(s) for s in CaseState} == {"open", "closed"}


def test_xml_follows_the_spark_convention() -> None:
    document = [{"service_code": "gas", "metadata": True, "description": None, "values": [{"key": "a", "name": "甲"}]}]
    root = ElementTree.fromstring(formats.render(document, "services", formats.XML))
    assert root.tag == "services" and [child.tag for child in root] == ["service"]
    assert root.findtext("service/metadata") == "true" and root.findtext("service/description") == ""
    assert root.findtext("service/values/value/name") == "甲"
    assert json.loads(formats.render(document, "services", formats.JSON)) == document


def test_text_is_escaped_not_markup() -> None:
    body = formats.render([{"code": "x", "description": "<b>&</b>"}], "errors", formats.XML)
    assert b"<b>" not in body and ElementTree.fromstring(body).findtext("error/description") == "<b>&</b>"


@pytest.mark.parametrize("fmt", ["html", "JSON", "", "xml.json"])
def test_unknown_formats_are_unknown_resources(fmt: str) -> None:
    with pytest.raises(UnknownResource):
        formats.checked(fmt)
