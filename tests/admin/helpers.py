"""Shared helpers for the admin tests: SQL against the test database and type checks of what the pages read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lib import db


def sql(query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run one statement in its own committed transaction; rows as dicts."""
    with db.transaction() as conn:
        cur = conn.execute(query, params)
        return [dict(r) for r in cur.fetchall()] if cur.description else []


def audit_rows(action: str | None = None) -> list[dict[str, Any]]:
    """admin_actions rows, oldest first (optionally one action)."""
    return sql(
        """SELECT admin_id, action, target_user_id, details FROM admin_actions
           WHERE %(a)s::text IS NULL OR action = %(a)s ORDER BY created_at, id""",
        {"a": action},
    )


def is_timestamp(value: Any) -> bool:
    """What `new Date(value)` in the page can parse: an ISO 8601 string."""
    if not isinstance(value, str):
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True
