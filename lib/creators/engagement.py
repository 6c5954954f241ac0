"""A fan's engagement page (FanEngagement): their call history, favourite creators and spending."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lib import presence
from lib.db import Conn
from lib.users import User

HISTORY_LIMIT = 50

_HISTORY = """
    SELECT c.id, u.username AS creator, coalesce(u.display_name, u.username) AS creator_name, c.call_type,
           c.last_billed_minute AS minutes, c.total_cost AS cost,
           (extract(epoch FROM coalesce(c.ended_at, c.connected_at)) * 1000)::bigint AS at_ms
    FROM call_sessions c JOIN users u ON u.id = c.creator_id
    WHERE c.fan_id = %(me)s AND c.connected_at IS NOT NULL
    ORDER BY c.created_at DESC
    LIMIT %(limit)s"""

_FAVORITES = """
    SELECT u.id, u.username AS creator, coalesce(u.display_name, u.username) AS creator_name,
           coalesce(u.creator_type, 'Creator') AS category,
           (extract(epoch FROM f.created_at) * 1000)::bigint AS added_ms,
           (extract(epoch FROM greatest(f.created_at,
               (SELECT max(c.created_at) FROM call_sessions c WHERE c.fan_id = f.fan_id AND c.creator_id = u.id),
               (SELECT max(t.created_at) FROM tips t WHERE t.from_user_id = f.fan_id AND t.to_user_id = u.id)
           )) * 1000)::bigint AS last_ms,
           EXISTS (SELECT 1 FROM streams s WHERE s.creator_id = u.id AND s.status = 'live') AS is_live
    FROM favorites f JOIN users u ON u.id = f.creator_id
    WHERE f.fan_id = %(me)s
    ORDER BY f.created_at DESC"""

# Tokens this fan spent on calls and tips (the tables that record what each spend bought).
_SPENDING = """
    SELECT coalesce(sum(amount), 0)::bigint AS total,
           coalesce(sum(amount) FILTER (WHERE created_at >= date_trunc('month', now())), 0)::bigint AS this_month,
           count(*) FILTER (WHERE kind = 'call') AS sessions,
           count(*) FILTER (WHERE kind = 'tip') AS tips
    FROM (SELECT 'call' AS kind, total_cost AS amount, created_at FROM call_sessions
          WHERE fan_id = %(me)s AND connected_at IS NOT NULL
          UNION ALL
          SELECT 'tip', amount, created_at FROM tips WHERE from_user_id = %(me)s) spent"""


def engagement(conn: Conn, fan: User) -> dict[str, Any]:
    """GET /users/engagement: {watchHistory, favorites, achievements, spending}.

    Times are epoch milliseconds (the page subtracts them from `new Date()`); durations are billed minutes and
    costs tokens. There are no ratings or achievements in this backend yet: `rating` is null, `achievements` [].
    """
    me = {"me": fan.id, "limit": HISTORY_LIMIT}
    history = [
        {
            "id": r["id"],
            "creator": r["creator"],
            "creatorName": r["creator_name"],
            "type": f"{r['call_type']}_call",
            "duration": r["minutes"],
            "cost": r["cost"],
            "rating": None,
            "timestamp": r["at_ms"],
            "thumbnail": None,
            "notes": None,
        }
        for r in conn.execute(_HISTORY, me).fetchall()
    ]
    rows = conn.execute(_FAVORITES, me).fetchall()
    online: set[UUID] = presence.online_among(r["id"] for r in rows)
    favorites = [
        {
            "id": r["id"],
            "creator": r["creator"],
            "creatorName": r["creator_name"],
            "category": r["category"],
            "addedAt": r["added_ms"],
            "lastInteraction": r["last_ms"],
            "isOnline": r["id"] in online,
            "isLive": r["is_live"],
        }
        for r in rows
    ]
    spent = conn.execute(_SPENDING, me).fetchone() or {}
    spending = {
        "thisMonth": spent.get("this_month", 0),
        "total": spent.get("total", 0),
        "sessions": spent.get("sessions", 0),
        "tips": spent.get("tips", 0),
    }
    return {"watchHistory": history, "favorites": favorites, "achievements": [], "spending": spending}
