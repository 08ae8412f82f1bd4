"""The spec's two formats: JSON, and XML with the spec's element names (the Spark convention maps one onto the
other: a list becomes a wrapper element holding one element per item). Written with ElementTree; nothing here
parses XML."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree

from app.open311.errors import UnknownResource

JSON, XML = "json", "xml"
MEDIA_TYPES = {JSON: "application/json; charset=utf-8", XML: "text/xml; charset=utf-8"}
# Wrapper element → the element of each item.
ITEMS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}


def checked(fmt: str) -> str:
    if fmt not in MEDIA_TYPES:
        raise UnknownResource(field="format")
    return fmt


def format_of_path(path: str) -> str:
    """The format a request asked for, for answering errors (JSON when it named none we know)."""
    return XML if path.endswith(".xml") else JSON


def render(document: Any, root: str, fmt: str) -> bytes:
    """``document`` as JSON, or as XML under ``root`` (a dict: its keys; a list: one ``ITEMS[root]`` per item)."""
    if fmt == JSON:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    element = _element(root, document)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(
        element, encoding="utf-8", xml_declaration=False
    )


def _element(tag: str, value: Any) -> ElementTree.Element:
    element = ElementTree.Element(tag)
    if isinstance(value, dict):
        element.extend(_element(key, item) for key, item in value.items())
    elif isinstance(value, list):
        element.extend(_element(ITEMS[tag], item) for item in value)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)
    return element
