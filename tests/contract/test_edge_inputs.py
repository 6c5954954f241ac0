"""Hostile-but-plausible inputs on every documented parameter: a client error, never a 5xx.

Deterministic probes of what fuzzing finds only by luck: integers past PostgreSQL's int4/int8 range and strings
with a NUL byte (PostgreSQL text cannot hold one), in each query and path parameter and each top-level field of
a JSON or form body, the other fields filled with plain valid values. Known failures: known_failures.py.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest

from lib.routing.openapi import SCHEMA_REF, openapi_document
from tests.contract import stack as contract_stack
from tests.contract.known_failures import KNOWN_EDGE_FAILURES

DOCUMENT = openapi_document()
PATHS = re.compile(os.environ.get("DIGIS_CONTRACT_PATHS") or "")  # as in test_schemathesis.py
USE_KNOWN_FAILURES = os.environ.get("DIGIS_CONTRACT_XFAIL", "1") != "0"
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]
EDGES: dict[str, list[tuple[str, Any]]] = {
    "integer": [("2**31", 2**31), ("2**63", 2**63)],
    "string": [("NUL", "a\x00b")],
}


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema behind a $ref, the first non-null branch of anyOf/oneOf, allOf merged."""
    for _ in range(10):  # bounded: refs to refs
        if "$ref" in schema:
            schema = SCHEMAS[schema["$ref"].removeprefix(SCHEMA_REF)]
        elif "anyOf" in schema or "oneOf" in schema:
            branches = [b for b in schema.get("anyOf", schema.get("oneOf", [])) if b.get("type") != "null"]
            schema = branches[0] if branches else {}
        elif "allOf" in schema:
            merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for part in schema["allOf"]:
                part = resolve(part)
                merged["properties"].update(part.get("properties", {}))
                merged["required"] += part.get("required", [])
            schema = merged
        else:
            return schema
    return schema


def plain_value(schema: dict[str, Any]) -> Any:
    """An ordinary valid value for a schema (enough to get past validation to the code under test)."""
    schema = resolve(schema)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    kind = schema.get("type")
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        props = schema.get("properties", {})
        return {name: plain_value(props[name]) for name in schema.get("required", []) if name in props}
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    if schema.get("format") == "date-time":
        return "2030-01-01T00:00:00Z"
    return "x" * max(1, int(schema.get("minLength", 1)))


def _kind(schema: dict[str, Any]) -> str | None:
    kind = resolve(schema).get("type")
    return kind if isinstance(kind, str) and kind in EDGES else None


def _body(operation: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    content = operation.get("requestBody", {}).get("content", {})
    for media in ("application/json", "application/x-www-form-urlencoded"):
        if media in content:
            schema = resolve(content[media].get("schema", {}))
            if schema.get("type") == "object" or "properties" in schema:
                return media, schema
    return None


def probes() -> list[Any]:
    """One pytest param per (operation, parameter or body field, edge value)."""
    found = []
    for path, item in DOCUMENT["paths"].items():
        if not PATHS.search(path):
            continue
        for method, operation in item.items():
            targets = [
                (p["in"], p["name"], p.get("schema", {}))
                for p in operation.get("parameters", [])
                if p["in"] in ("query", "path")
            ]
            body = _body(operation)
            if body is not None:
                targets += [("body", name, prop) for name, prop in body[1].get("properties", {}).items()]
            for where, name, schema in targets:
                kind = _kind(schema)
                for label, value in EDGES.get(kind or "", []):
                    probe_id = f"{method.upper()} {path} {where}:{name}={label}"
                    marks = []
                    if USE_KNOWN_FAILURES and probe_id in KNOWN_EDGE_FAILURES:
                        marks.append(pytest.mark.xfail(reason=KNOWN_EDGE_FAILURES[probe_id], strict=True))
                    found.append(pytest.param(path, method, where, name, value, id=probe_id, marks=marks))
    return found


def build_request(
    path: str, method: str, where: str, name: str, value: Any
) -> tuple[str, dict[str, Any], bytes, str | None]:
    """(url path with query, the operation, raw body, content type) with `value` in place and the rest plain."""
    operation = DOCUMENT["paths"][path][method]
    path_values: dict[str, Any] = {}
    query: dict[str, Any] = {}
    for param in operation.get("parameters", []):
        if param["in"] not in ("query", "path"):
            continue
        chosen = value if (param["in"], param["name"]) == (where, name) else None
        if chosen is None and not param.get("required") and param["in"] == "query":
            continue
        target = path_values if param["in"] == "path" else query
        target[param["name"]] = chosen if chosen is not None else plain_value(param.get("schema", {}))
    url = path
    for key, raw in path_values.items():
        url = url.replace("{" + key + "}", quote(str(raw), safe=""))
    if query:
        url += "?" + urlencode({k: json.dumps(v) if isinstance(v, bool) else v for k, v in query.items()})
    body, content_type = b"", None
    found = _body(operation)
    if found is not None:
        content_type, schema = found
        fields = plain_value(schema)
        if where == "body":
            fields[name] = value
        body = (
            json.dumps(fields).encode() if content_type == "application/json" else urlencode(fields).encode()
        )
    return url, operation, body, content_type


@pytest.mark.parametrize(("path", "method", "where", "name", "value"), probes())
def test_edge_value_is_a_client_error_not_a_crash(
    api: contract_stack.Stack, user_token: str, path: str, method: str, where: str, name: str, value: Any
) -> None:
    """The function answers the edge value with a documented 4xx problem (or accepts it), never a 5xx."""
    url, operation, body, content_type = build_request(path, method, where, name, value)
    headers = api.credentials(contract_stack.schemes_of(operation), user_token, url=api.url + url, body=body)
    if content_type:
        headers["Content-Type"] = content_type
    contract_stack.reset_rate_limits()
    response = httpx.request(method.upper(), api.url + url, content=body, headers=headers, timeout=30)
    assert response.status_code < 500, (
        f"{method.upper()} {url} -> {response.status_code}: {response.text[:500]}"
    )
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), response.text[:200]
