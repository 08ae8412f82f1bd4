from __future__ import annotations

from pathlib import Path

import yaml

from app.openapi_export import openapi_document, openapi_yaml

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.yaml"


def test_committed_openapi_matches_the_app() -> None:
    assert COMMITTED.exists(), "run `make openapi` and commit openapi.yaml"
    assert yaml.safe_load(COMMITTED.read_text(encoding="utf-8")) == yaml.safe_load(openapi_yaml()), (
        "openapi.yaml is stale: run `make openapi` and commit it"
    )


def test_every_operation_has_a_stable_id_and_documents_its_errors() -> None:
    document = openapi_document()
    ids = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            ids.append(operation["operationId"])
            assert "__" not in operation["operationId"], f"{method} {path} has a generated operation id"
            if operation.get("requestBody") or operation.get("parameters"):
                # Open311 routes answer the spec's 400/403/404, documented as one "4XX".
                assert {"422", "403", "4XX"} & set(operation["responses"]), f"{method} {path}"
    assert len(ids) == len(set(ids))


def test_constraints_reach_the_schema_as_json_schema_keywords() -> None:
    # A constraint pydantic could not place (Field(ge=0) on an optional validated int) reached the schema as "ge",
    # which no client or fuzzer reads: schemathesis then sent -1602243 as a valid amount.
    leaked = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            leaked.extend(f"{where}.{key}" for key in ("ge", "le", "gt", "lt") if key in node)
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    walk(openapi_document(), "")
    assert not leaked, leaked
