"""An unexpected error reaches Sentry (the local sink) before the response, with tokens and secrets scrubbed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from localdev.sentry_sink import running

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtdXNlciJ9.c2lnbmF0dXJlLXZhbHVl"

# The SDK keeps global state, so the function runs in its own interpreter.
_SCRIPT = textwrap.dedent(
    f"""
    import json
    from fastapi.testclient import TestClient
    from lib.http import create_app

    app = create_app(rate_limit=None)

    @app.get("/api/explode")
    def explode() -> None:
        raise RuntimeError("token Bearer {TOKEN} and key sk_live_abcdefghijkl leaked")

    r = TestClient(app, raise_server_exceptions=False).get(
        "/api/v1/explode", headers={{"Authorization": "Bearer {TOKEN}", "Stripe-Signature": "t=1,v1=abc"}}
    )
    print(json.dumps({{"status": r.status_code, "body": r.json()}}))
    """
)


def test_unhandled_error_reaches_sentry_scrubbed() -> None:
    with running() as sink:
        env = dict(os.environ, SENTRY_DSN=sink.dsn(), ENVIRONMENT="test", PYTHONPATH=str(ROOT))
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        # Flushed before the response completed: the event is already there when the request returns.
        events = sink.items(type="event")
    assert answer["status"] == 500 and answer["body"]["code"] == "INTERNAL_ERROR"
    assert len(events) == 1
    raw = json.dumps(events[0]["payload"])
    assert "RuntimeError" in raw
    assert TOKEN not in raw and "sk_live_abcdefghijkl" not in raw
    assert "[Filtered]" in raw
    assert events[0]["payload"]["tags"]["request_id"] == answer["body"]["requestId"]
