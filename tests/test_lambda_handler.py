"""lambda_handler.py: an API Gateway v2 HTTP event reaches the same function, routed as on Vercel."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mangum.types import LambdaCognitoIdentity, LambdaMobileClientContext

from tests.support.functions import client

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class _Context:
    """A Lambda context object, as the runtime hands it to the handler."""

    function_name: str = "digis-api"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:digis-api"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name: str = "/aws/lambda/digis-api"
    log_stream_name: str = "2026/01/05/[$LATEST]abcdef"
    identity: LambdaCognitoIdentity | None = None
    client_context: LambdaMobileClientContext | None = None

    def get_remaining_time_in_millis(self) -> int:
        """Time left in this invocation."""
        return 30_000


def http_api_event(method: str, path: str, query: str = "", body: str | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as AWS sends it."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "pytest",
            "x-forwarded-for": "203.0.113.9",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
            "accept": "application/json",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "pytest",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "05/Jan/2026:03:17:00 +0000",
            "timeEpoch": 1767583020000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def _body(response: dict[str, Any]) -> Any:
    raw = response["body"]
    return json.loads(base64.b64decode(raw) if response.get("isBase64Encoded") else raw)


def test_v1_health_event_returns_the_health_functions_answer(clean: None) -> None:
    from lambda_handler import lambda_handler

    response = lambda_handler(http_api_event("GET", "/api/v1/health"), _Context())
    direct = client("health.py").get("/api/v1/health")
    assert response["statusCode"] == direct.status_code == 200
    body = _body(response)
    assert body["checks"] == direct.json()["checks"]
    assert body["checks"]["database"] == "ok"
    assert body["status"] in ("healthy", "degraded")
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["content-type"].startswith("application/json")
    assert headers["x-request-id"]  # the function's own envelope ran


def test_alias_event_reaches_the_same_function(clean: None) -> None:
    from lambda_handler import lambda_handler

    response = lambda_handler(http_api_event("GET", "/api/healthz"), _Context())
    assert response["statusCode"] == 200
    assert _body(response)["checks"]["database"] == "ok"


def test_unknown_path_event_is_404_problem_json() -> None:
    from lambda_handler import lambda_handler

    response = lambda_handler(http_api_event("GET", "/api/v1/definitely-not-a-function"), _Context())
    assert response["statusCode"] == 404
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["content-type"] == "application/problem+json"
    assert _body(response)["code"] == "NOT_FOUND"


def test_the_lambda_entry_needs_nothing_from_localdev_and_the_route_table_is_stdlib_only() -> None:
    """lambda_handler.py routes with lib/routing alone; importing the table pulls in no web framework."""
    code = (
        "import sys; import lib.routing; heavy = {'fastapi', 'starlette', 'pydantic'} & set(sys.modules); "
        "assert not heavy, heavy; import lambda_handler; "
        "local = [m for m in sys.modules if m.split('.')[0] == 'localdev']; assert not local, local"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
