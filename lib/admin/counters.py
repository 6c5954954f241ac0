"""GET /admin/stats: the dashboard's counters, one section per domain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lib.db import Conn

StatSection = Callable[[Conn], dict[str, Any]]


def _people_and_activity(conn: Conn) -> dict[str, Any]:
    row = conn.execute(
        """SELECT (SELECT count(*) FROM users WHERE role <> 'system') AS total_users,
                  (SELECT count(*) FROM users WHERE is_creator AND role <> 'system') AS creators,
                  (SELECT count(*) FROM call_sessions WHERE state = 'active') AS active_sessions,
                  (SELECT count(*) FROM streams WHERE status = 'live') AS live_streams,
                  (SELECT count(*) FROM creator_applications WHERE status = 'pending') AS pending"""
    ).fetchone()
    assert row is not None  # a query of scalar subqueries always returns one row
    return {
        "totalUsers": row["total_users"],
        "activeCreators": row["creators"],
        "activeSessions": row["active_sessions"],
        "liveStreams": row["live_streams"],
        "pendingApplications": row["pending"],
    }


def _revenue(conn: Conn) -> dict[str, Any]:
    # "Today" is the UTC calendar day; a payment counts on the day it was created.
    row = conn.execute(
        """SELECT COALESCE(sum(amount_cents), 0)::bigint AS cents FROM payments
           WHERE status = 'succeeded' AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"""
    ).fetchone()
    return {"revenue": {"todayCents": row["cents"] if row else 0}}


def _payouts(conn: Conn) -> dict[str, Any]:
    from lib import payouts  # imported here: only the stats route needs the payouts package

    return payouts.admin_section(conn)


# Each section adds keys to GET /admin/stats; another domain's numbers are one more function here.
STAT_SECTIONS: list[StatSection] = [_people_and_activity, _revenue, _payouts]


def stats(conn: Conn) -> dict[str, Any]:
    """GET /admin/stats: {totalUsers, activeCreators, activeSessions, liveStreams, revenue: {todayCents},
    payouts: {byStatus, creatorDebt, recent}, ...}."""
    body: dict[str, Any] = {}
    for section in STAT_SECTIONS:
        body.update(section(conn))
    return body
