"""Liveness of what a request needs: the database and Redis."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from lib import db
from lib.config import get_settings

Check = Literal["ok", "down"]


class Health(BaseModel):
    """GET /health body."""

    status: Literal["healthy", "degraded"]
    checks: dict[str, Check]
    version: str


def check() -> Health:
    """Check the database and Redis; anything down is degraded (the caller answers 503 without a database)."""
    from lib.redis import ping as redis_ping  # Redis is optional for health: the API degrades without it

    database: Check = "ok" if db.ping(timeout_s=get_settings().db_connect_timeout_s) else "down"
    cache: Check = "ok" if redis_ping() else "down"
    status: Literal["healthy", "degraded"] = "healthy" if database == cache == "ok" else "degraded"
    return Health(
        status=status, checks={"database": database, "redis": cache}, version=get_settings().app_version
    )
