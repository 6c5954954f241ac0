"""The admin dashboard's activity feed and daily series, read from the users, payments, tips, ledger and
application tables. Days are UTC calendar days; money is integer cents (`amount` is the same in USD, for charts)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from lib.db import Conn

TOP_CREATORS = 10


def activity_feed(conn: Conn, *, limit: int) -> dict[str, Any]:
    """GET /admin/activity-feed: the newest signups, purchases, tips and creator applications, merged.
    Usernames only (no emails); each item is `{id, type, message, timestamp, userId, username, ...}`."""
    rows = conn.execute(
        """(SELECT 'signup' AS type, u.id::text AS ref, u.id AS user_id, u.username, NULL::text AS other,
                   NULL::bigint AS tokens, NULL::bigint AS cents, u.created_at AS at
            FROM users u WHERE u.role <> 'system' ORDER BY u.created_at DESC, u.id DESC LIMIT %(n)s)
           UNION ALL
           (SELECT 'purchase', p.id::text, p.user_id, u.username, NULL, p.tokens, p.amount_cents, p.created_at
            FROM payments p JOIN users u ON u.id = p.user_id
            WHERE p.status = 'succeeded' ORDER BY p.created_at DESC LIMIT %(n)s)
           UNION ALL
           (SELECT 'tip', t.id::text, t.from_user_id, f.username, c.username, t.amount, NULL, t.created_at
            FROM tips t JOIN users f ON f.id = t.from_user_id JOIN users c ON c.id = t.to_user_id
            ORDER BY t.created_at DESC LIMIT %(n)s)
           UNION ALL
           (SELECT 'creator_application', a.id::text, a.user_id, u.username, NULL, NULL, NULL, a.submitted_at
            FROM creator_applications a JOIN users u ON u.id = a.user_id
            ORDER BY a.submitted_at DESC LIMIT %(n)s)
           ORDER BY at DESC, ref DESC LIMIT %(n)s""",
        {"n": limit},
    ).fetchall()
    return {"activities": [_activity(r) for r in rows]}


def _activity(row: dict[str, Any]) -> dict[str, Any]:
    who = f"@{row['username']}"
    messages = {
        "signup": f"{who} joined Digis",
        "purchase": f"{who} bought {row['tokens']} tokens (${(row['cents'] or 0) / 100:.2f})",
        "tip": f"{who} tipped @{row['other']} {row['tokens']} tokens",
        "creator_application": f"{who} applied to become a creator",
    }
    item: dict[str, Any] = {
        "id": f"{row['type']}:{row['ref']}",
        "type": row["type"],
        "message": messages[row["type"]],
        "timestamp": row["at"],
        "userId": row["user_id"],
        "username": row["username"],
    }
    if row["tokens"] is not None:
        item["amountTokens"] = row["tokens"]
    if row["cents"] is not None:
        item["amountCents"] = row["cents"]
    if row["other"] is not None:
        item["toUsername"] = row["other"]
    return item


def dashboard(conn: Conn, *, days: int, now: datetime | None = None) -> dict[str, Any]:
    """GET /admin/analytics/dashboard: `{revenue, growth, performance, conversions}` over the last `days` days."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    params = {"first": first, "today": today, "start": start, "top": TOP_CREATORS}
    return {
        "revenue": _revenue(conn, params),
        "growth": _growth(conn, params),
        "performance": _performance(conn, params),
        "conversions": _conversions(conn, params),
        "from": first.isoformat(),
        "to": today.isoformat(),
    }


_DAYS = "SELECT d::date AS day FROM generate_series(%(first)s::date, %(today)s::date, interval '1 day') AS d"


def _revenue(conn: Conn, params: dict[str, Any]) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"""WITH days AS ({_DAYS}),
                 paid AS (SELECT (created_at AT TIME ZONE 'UTC')::date AS day, sum(amount_cents) AS cents,
                                 sum(tokens) AS tokens, count(*) AS n
                          FROM payments WHERE status = 'succeeded' AND created_at >= %(start)s GROUP BY 1)
            SELECT days.day, coalesce(paid.cents, 0)::bigint AS cents, coalesce(paid.tokens, 0)::bigint AS tokens,
                   coalesce(paid.n, 0) AS n
            FROM days LEFT JOIN paid USING (day) ORDER BY days.day""",  # noqa: S608 - fixed text
        params,
    ).fetchall()
    return [
        {"date": _iso(r["day"]), "amount": r["cents"] / 100, "amountCents": r["cents"], "tokens": r["tokens"],
         "purchases": r["n"]}
        for r in rows
    ]  # fmt: skip


def _growth(conn: Conn, params: dict[str, Any]) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"""WITH days AS ({_DAYS}),
                 joined AS (SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n,
                                   count(*) FILTER (WHERE is_creator) AS creators
                            FROM users WHERE role <> 'system' AND created_at >= %(start)s GROUP BY 1),
                 before AS (SELECT count(*) AS n FROM users WHERE role <> 'system' AND created_at < %(start)s)
            SELECT days.day, coalesce(joined.n, 0) AS new_users, coalesce(joined.creators, 0) AS new_creators,
                   (before.n + sum(coalesce(joined.n, 0)) OVER (ORDER BY days.day))::bigint AS users
            FROM days LEFT JOIN joined USING (day) CROSS JOIN before ORDER BY days.day""",  # noqa: S608
        params,
    ).fetchall()
    return [
        {
            "date": _iso(r["day"]),
            "users": r["users"],
            "newUsers": r["new_users"],
            "newCreators": r["new_creators"],
        }
        for r in rows
    ]


def _performance(conn: Conn, params: dict[str, Any]) -> list[dict[str, Any]]:
    # Earnings as lib/payouts counts them: credits from another user (tips, call minutes), fees excluded.
    rows = conn.execute(
        """SELECT u.id, u.username, e.tokens,
                  (SELECT count(*) FROM call_sessions c
                   WHERE c.creator_id = u.id AND c.connected_at >= %(start)s) AS sessions
           FROM (SELECT user_id, sum(amount) AS tokens FROM token_transactions
                 WHERE amount > 0 AND counterparty_id IS NOT NULL AND type <> 'platform_fee'
                       AND created_at >= %(start)s
                 GROUP BY user_id) e
           JOIN users u ON u.id = e.user_id AND u.is_creator
           ORDER BY e.tokens DESC, u.username LIMIT %(top)s""",
        params,
    ).fetchall()
    return [
        {"creator": r["username"], "creatorId": r["id"], "earnings": int(r["tokens"]), "sessions": r["sessions"],
         "rating": None}
        for r in rows
    ]  # fmt: skip


def _conversions(conn: Conn, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The funnel of the users who joined in the window: bought tokens, applied, approved as creators."""
    row = conn.execute(
        """SELECT count(*) AS signed_up,
                  count(*) FILTER (WHERE EXISTS (SELECT 1 FROM payments p
                                                 WHERE p.user_id = u.id AND p.status = 'succeeded')) AS purchased,
                  count(*) FILTER (WHERE EXISTS (SELECT 1 FROM creator_applications a
                                                 WHERE a.user_id = u.id)) AS applied,
                  count(*) FILTER (WHERE EXISTS (SELECT 1 FROM creator_applications a
                                                 WHERE a.user_id = u.id AND a.status = 'approved')) AS approved
           FROM users u WHERE u.role <> 'system' AND u.created_at >= %(start)s""",
        params,
    ).fetchone()
    assert row is not None  # an aggregate always returns one row
    stages = (
        ("signed_up", "Signed up"),
        ("purchased", "Bought tokens"),
        ("applied", "Applied to create"),
        ("approved", "Approved creators"),
    )
    signed_up = row["signed_up"]
    return [
        {"stage": key, "name": name, "value": row[key],
         "rate": round(row[key] / signed_up, 4) if signed_up else 0.0}
        for key, name in stages
    ]  # fmt: skip


def _iso(day: date) -> str:
    return day.isoformat()
