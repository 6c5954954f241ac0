"""Calls as their participants read them: one call's status, my ringing calls, my history."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from psycopg.rows import DictRow

from lib.calls import queries
from lib.calls.machine import view
from lib.calls.models import CallHistory, CallView, Party, PendingCalls
from lib.db import Conn
from lib.errors import NotFound
from lib.users import User

MAX_LIMIT = 100


def _party(row: DictRow) -> Party:
    return Party(
        id=row["other_id"],
        username=row["other_username"],
        displayName=row["other_display_name"],
        profilePicUrl=row["other_profile_pic_url"],
    )


def status(conn: Conn, user: User, call_id: UUID, now: datetime) -> CallView:
    """One call, for its participants only (404 for anyone else)."""
    call = queries.get(conn, call_id)
    if call is None or not call.has_party(user.id):
        raise NotFound("Call not found", code="CALL_NOT_FOUND")
    return view(call, user.id, now)


def pending(conn: Conn, user: User, now: datetime) -> PendingCalls:
    """Ringing calls I am in (incoming and outgoing), newest first."""
    rows = queries.pending(conn, user.id, now)
    return PendingCalls(calls=[view(queries.call_of_row(r), user.id, now, _party(r)) for r in rows])


def history(conn: Conn, user: User, now: datetime, *, limit: int, offset: int) -> CallHistory:
    """My calls, newest first."""
    limit = max(1, min(limit, MAX_LIMIT))
    offset = max(0, offset)
    rows, total = queries.history(conn, user.id, limit=limit, offset=offset)
    calls: list[CallView] = [view(queries.call_of_row(r), user.id, now, _party(r)) for r in rows]
    return CallHistory(
        calls=calls, total=total, limit=limit, offset=offset, hasMore=offset + len(calls) < total
    )
