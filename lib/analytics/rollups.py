"""The rollup tables read by UTC day windows (migration 0096), and who may read a creator's figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from lib import users
from lib.analytics import models as m
from lib.db import Conn
from lib.errors import Forbidden, NotFound
from lib.users import User

_N_DAYS = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}


def today_utc(now: datetime) -> date:
    """The UTC day of `now`."""
    return now.astimezone(UTC).date()


def window(period: m.Period, today: date) -> tuple[date | None, date]:
    """[first day, last day] of a period, both UTC days, inclusive; None = since the beginning."""
    if period in _N_DAYS:
        return today - timedelta(days=_N_DAYS[period] - 1), today
    if period == "today":
        return today, today
    if period == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if period == "week":
        return today - timedelta(days=today.weekday()), today
    if period == "month":
        return today.replace(day=1), today
    if period == "year":
        return today.replace(month=1, day=1), today
    return None, today


def check_access(conn: Conn, viewer: User, creator_id: UUID) -> None:
    """A creator sees their own analytics, an admin anyone's; 403 otherwise, 404 for no such user (admins)."""
    if viewer.id != creator_id and not viewer.is_admin:
        raise Forbidden("You can only see your own analytics", code="NOT_YOUR_ANALYTICS")
    if viewer.id != creator_id and users.get(conn, creator_id) is None:
        raise NotFound("Creator not found", code="CREATOR_NOT_FOUND")


# --- reads of the rollups ---------------------------------------------------------------------------------------


def rows_between(conn: Conn, creator_id: UUID, since: date | None, until: date) -> list[Any]:
    return conn.execute(
        """SELECT day, kind, amount, credits FROM earnings_daily
           WHERE creator_id = %(c)s AND day >= coalesce(%(since)s::date, '-infinity'::date) AND day <= %(until)s""",
        {"c": creator_id, "since": since, "until": until},
    ).fetchall()


def total(rows: list[Any]) -> int:
    return sum(int(r["amount"]) for r in rows)
