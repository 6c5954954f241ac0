"""Frontend-contract fixtures: presence state reset per test, and helpers to read rows and scan for leaks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lib import db, presence

PRIVATE_KEYS = {"email", "token_balance", "balance", "tokenBalance", "debt_tokens"}


@pytest.fixture(autouse=True)
def _fresh_presence() -> Iterator[None]:
    presence.reset_local()
    yield
    presence.reset_local()


def sql(query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run one statement in its own committed transaction; rows as dicts."""
    with db.transaction() as conn:
        cur = conn.execute(query, params)
        return [dict(r) for r in cur.fetchall()] if cur.description else []


def private_keys(value: Any) -> set[str]:
    """Every private key name found anywhere in a JSON value."""
    if isinstance(value, dict):
        found = {k for k in value if k in PRIVATE_KEYS}
        for v in value.values():
            found |= private_keys(v)
        return found
    if isinstance(value, list):
        return set().union(*(private_keys(v) for v in value)) if value else set()
    return set()
