"""Calls: every query on call_sessions outside the set-based billing sweep."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.rows import DictRow

from lib.calls.models import Call
from lib.db import Conn

COLUMNS = (
    "id, fan_id, creator_id, initiated_by, call_type, state, channel, rate_per_minute, message, created_at,"
    " ring_expires_at, connected_at, ended_at, end_reason, ended_by, last_billed_minute, total_cost,"
    " fan_last_seen_at, creator_last_seen_at"
)
_SETTABLE = frozenset(COLUMNS.replace(" ", "").split(",")) - {"id", "fan_id", "creator_id", "initiated_by"}


def get(conn: Conn, call_id: UUID) -> Call | None:
    """One call by id."""
    row = conn.execute(f"SELECT {COLUMNS} FROM call_sessions WHERE id = %(id)s", {"id": call_id}).fetchone()  # noqa: S608
    return Call.model_validate(row) if row else None


def lock(conn: Conn, call_id: UUID) -> Call | None:
    """One call by id, row-locked until the transaction ends (every state change goes through this)."""
    row = conn.execute(
        f"SELECT {COLUMNS} FROM call_sessions WHERE id = %(id)s FOR UPDATE",  # noqa: S608
        {"id": call_id},
    ).fetchone()
    return Call.model_validate(row) if row else None


def insert_ringing(
    conn: Conn,
    *,
    call_id: UUID,
    fan_id: UUID,
    creator_id: UUID,
    initiated_by: UUID,
    call_type: str,
    rate: int,
    message: str | None,
    now: datetime,
    ring_for: timedelta,
) -> Call | None:
    """A new ringing call, or None when the creator already has a ringing or active one (the partial index)."""
    caller_is_fan = initiated_by == fan_id
    row = conn.execute(
        f"""INSERT INTO call_sessions (id, fan_id, creator_id, initiated_by, call_type, state, channel,
                                       rate_per_minute, message, created_at, ring_expires_at,
                                       fan_last_seen_at, creator_last_seen_at)
            VALUES (%(id)s, %(fan)s, %(creator)s, %(by)s, %(type)s, 'ringing', %(channel)s, %(rate)s, %(message)s,
                    %(now)s, %(expires)s, %(fan_seen)s, %(creator_seen)s)
            ON CONFLICT (creator_id) WHERE state IN ('ringing', 'active') DO NOTHING
            RETURNING {COLUMNS}""",  # noqa: S608
        {
            "id": call_id,
            "fan": fan_id,
            "creator": creator_id,
            "by": initiated_by,
            "type": call_type,
            "channel": channel_name(call_id),
            "rate": rate,
            "message": message,
            "now": now,
            "expires": now + ring_for,
            "fan_seen": now if caller_is_fan else None,
            "creator_seen": None if caller_is_fan else now,
        },
    ).fetchone()
    return Call.model_validate(row) if row else None


def channel_name(call_id: UUID) -> str:
    """The call's Agora channel (and `private-call-{channel}`): valid in both alphabets, 37 characters."""
    return f"call-{call_id.hex}"


def update(conn: Conn, call_id: UUID, changes: dict[str, Any]) -> Call:
    """Write some columns of a call (already locked by the caller) and return the new row."""
    unknown = set(changes) - _SETTABLE
    if unknown:
        raise ValueError(f"not settable on call_sessions: {sorted(unknown)}")
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in changes
    )
    query = sql.SQL("UPDATE call_sessions SET {} WHERE id = %(_id)s RETURNING {}").format(
        assignments, sql.SQL(COLUMNS)
    )
    row = conn.execute(query, {**changes, "_id": call_id}).fetchone()
    assert row is not None, f"call {call_id} vanished under its own lock"
    return Call.model_validate(row)


def party(conn: Conn, user_id: UUID) -> DictRow | None:
    """The fields a call needs about a user: name, role, creator flag and per-minute prices."""
    return conn.execute(
        """SELECT id, username, display_name, profile_pic_url, role, is_creator, video_price, voice_price
           FROM users WHERE id = %(id)s""",
        {"id": user_id},
    ).fetchone()


def claim_parties(conn: Conn, call_id: UUID, user_ids: list[UUID]) -> set[UUID]:
    """Claim each user's one live-call slot for `call_id`; the users claimed (a user in a live call is not).

    Claims are taken in id order, so two requests claiming the same two users in opposite roles cannot deadlock;
    a slot another transaction is claiming waits for it (taken if it rolls back, refused if it commits).
    """
    rows = conn.execute(
        """INSERT INTO call_live_parties (user_id, call_id)
           SELECT u, %(call)s FROM unnest(%(users)s::uuid[]) AS u ORDER BY u
           ON CONFLICT ON CONSTRAINT call_live_parties_pkey DO NOTHING
           RETURNING user_id""",
        {"call": call_id, "users": sorted(set(user_ids))},
    ).fetchall()
    return {r["user_id"] for r in rows}


def live_call_of(conn: Conn, user_id: UUID) -> Call | None:
    """The ringing or active call the user is in, on either side (at most one: call_live_parties)."""
    row = conn.execute(
        f"""SELECT {", ".join("c." + c.strip() for c in COLUMNS.split(","))}
            FROM call_live_parties p JOIN call_sessions c ON c.id = p.call_id
            WHERE p.user_id = %(u)s""",  # noqa: S608
        {"u": user_id},
    ).fetchone()
    return Call.model_validate(row) if row else None


def display_name(row: DictRow) -> str:
    """What a call notification calls a user."""
    return str(row["display_name"] or row["username"])


_VIEW = f"""
    SELECT {", ".join("c." + c.strip() for c in COLUMNS.split(","))},
           o.id AS other_id, o.username AS other_username, o.display_name AS other_display_name,
           o.profile_pic_url AS other_profile_pic_url
    FROM call_sessions c
    JOIN users o ON o.id = CASE WHEN c.fan_id = %(me)s THEN c.creator_id ELSE c.fan_id END
"""  # noqa: S608


_HISTORY = (
    _VIEW  # noqa: S608 - constant SQL; user values are bound parameters
    + """ WHERE c.id IN (SELECT id FROM call_sessions WHERE fan_id = %(me)s
                         UNION ALL SELECT id FROM call_sessions WHERE creator_id = %(me)s)
          ORDER BY c.created_at DESC, c.id DESC LIMIT %(limit)s OFFSET %(offset)s"""
)


def pending(conn: Conn, user_id: UUID, now: datetime, limit: int = 20) -> list[DictRow]:
    """Ringing calls the user is in whose ring has not expired, newest first."""
    return conn.execute(
        _VIEW
        + """ WHERE c.state = 'ringing' AND c.ring_expires_at > %(now)s
                AND (c.fan_id = %(me)s OR c.creator_id = %(me)s)
              ORDER BY c.created_at DESC LIMIT %(limit)s""",
        {"me": user_id, "now": now, "limit": limit},
    ).fetchall()


def history(conn: Conn, user_id: UUID, *, limit: int, offset: int) -> tuple[list[DictRow], int]:
    """The user's calls, newest first, with the total count."""
    rows = conn.execute(_HISTORY, {"me": user_id, "limit": limit, "offset": offset}).fetchall()
    total = conn.execute(
        """SELECT (SELECT count(*) FROM call_sessions WHERE fan_id = %(me)s)
                + (SELECT count(*) FROM call_sessions WHERE creator_id = %(me)s) AS n""",
        {"me": user_id},
    ).fetchone()
    return rows, int(total["n"]) if total else 0


def call_of_row(row: DictRow) -> Call:
    """The Call inside a `_VIEW` row."""
    return Call.model_validate(row)
