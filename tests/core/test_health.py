"""GET /api/health: database and Redis checks; 503 without a database, fast."""

from __future__ import annotations

import time

import pytest

from lib import config, db
from tests.support.functions import client


def test_health_reports_database_and_redis(clean: None) -> None:
    for path in ("/api/health", "/api/v1/health", "/api/healthz", "/api/v1/healthz"):
        r = client("health.py").get(path)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["checks"]["database"] == "ok"
        assert body["status"] in ("healthy", "degraded")
        assert body["version"]


def test_database_down_is_fast_503(monkeypatch: pytest.MonkeyPatch) -> None:
    # A port nothing listens on, and an address that never answers (TEST-NET), both bounded by connect_timeout.
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT_S", "1")
    monkeypatch.setenv("DB_POOL_TIMEOUT_S", "1")
    db.close_pool()
    config.reset()
    try:
        started = time.perf_counter()
        r = client("health.py").get("/api/health")
        elapsed = time.perf_counter() - started
        assert r.status_code == 503
        assert r.json()["checks"]["database"] == "down"
        assert elapsed < 2.5, elapsed
    finally:
        db.close_pool()
        monkeypatch.undo()
        config.reset()
