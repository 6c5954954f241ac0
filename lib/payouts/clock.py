"""The payouts clock: one function, so tests move time forward (the reserve window) without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time (tests replace this function)."""
    return datetime.now(UTC)
