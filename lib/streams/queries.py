"""Streams: every query on the streams table."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.rows import DictRow

from lib.db import Conn
from lib.streams.models import EndReason, Stream

_COLUMNS = (
    "s.id, s.creator_id, u.username AS creator_username, s.channel, s.title, s.category, s.description, s.status,"
    " s.started_at, s.ended_at, s.end_reason, s.last_heartbeat_at, s.viewer_count, s.peak_viewers, s.tips_tokens"
)
_SELECT = f"SELECT {_COLUMNS} FROM streams s JOIN users u ON u.id = s.creator_id"  # noqa: S608
MAX_REF_LENGTH = 200  # a Pusher channel name's limit; anything longer names no stream


def channel_name(stream_id: UUID) -> str:
    """The stream's Agora channel (and `presence-stream-{channel}`): valid in both alphabets, 39 characters."""
    return f"stream-{stream_id.hex}"


# ---- what the other domains call (tips, profiles, Pusher auth): signatures kept ----------------------------


def live_stream_by_channel(conn: Conn, channel: str) -> DictRow | None:
    """The live stream on `channel`, if any."""
    return conn.execute(
        "SELECT id, creator_id, channel, title FROM streams WHERE channel = %(c)s AND status = 'live'",
        {"c": channel},
    ).fetchone()


def record_tip(conn: Conn, stream_id: UUID, amount: int) -> None:
    """Add a tip to the stream's running total (in the tip's transaction)."""
    conn.execute(
        "UPDATE streams SET tips_tokens = tips_tokens + %(a)s WHERE id = %(id)s",
        {"a": amount, "id": stream_id},
    )


def is_live(conn: Conn, creator_id: UUID) -> bool:
    """Whether the creator is live now."""
    row = conn.execute(
        "SELECT 1 FROM streams WHERE creator_id = %(id)s AND status = 'live'", {"id": creator_id}
    ).fetchone()
    return row is not None


# ---- reads ---------------------------------------------------------------------------------------------------


def find(conn: Conn, ref: str, *, lock: bool = False) -> Stream | None:
    """A stream by id or by channel; `lock` holds its row until the transaction ends."""
    if len(ref) > MAX_REF_LENGTH:
        return None
    try:
        key: UUID | str = UUID(ref)
        where = "s.id = %(ref)s"
    except ValueError:
        key, where = ref, "s.channel = %(ref)s"
    row = conn.execute(
        f"{_SELECT} WHERE {where}{' FOR UPDATE OF s' if lock else ''}",
        {"ref": key},
    ).fetchone()
    return Stream.model_validate(row) if row else None


def live_of_creator(conn: Conn, creator_id: UUID) -> Stream | None:
    """The creator's live stream, if any (there is at most one)."""
    row = conn.execute(
        f"{_SELECT} WHERE s.creator_id = %(c)s AND s.status = 'live'", {"c": creator_id}
    ).fetchone()
    return Stream.model_validate(row) if row else None


def directory(conn: Conn, *, limit: int, offset: int) -> tuple[list[DictRow], int]:
    """A page of live streams, most watched first, with the total; the creator's public fields only."""
    rows = conn.execute(
        """SELECT s.id, s.channel, s.creator_id, u.username AS creator_username,
                  coalesce(nullif(u.display_name, ''), u.username) AS creator_name,
                  u.profile_pic_url AS creator_avatar, s.title, s.category, s.viewer_count, s.started_at
           FROM streams s JOIN users u ON u.id = s.creator_id
           WHERE s.status = 'live'
           ORDER BY s.viewer_count DESC, s.started_at DESC, s.id
           LIMIT %(limit)s OFFSET %(offset)s""",
        {"limit": limit, "offset": offset},
    ).fetchall()
    counted = conn.execute("SELECT count(*) AS n FROM streams WHERE status = 'live'").fetchone()
    return rows, int(counted["n"]) if counted else 0


# ---- writes --------------------------------------------------------------------------------------------------


def insert_live(
    conn: Conn,
    *,
    stream_id: UUID,
    creator_id: UUID,
    title: str,
    category: str | None,
    description: str | None,
    now: datetime,
) -> bool:
    """A new live stream; False when the creator already has one (the one-live-per-creator index)."""
    row = conn.execute(
        """INSERT INTO streams (id, creator_id, channel, title, category, description, status, started_at,
                                last_heartbeat_at)
           VALUES (%(id)s, %(creator)s, %(channel)s, %(title)s, %(category)s, %(description)s, 'live', %(now)s,
                   %(now)s)
           ON CONFLICT (creator_id) WHERE status = 'live' DO NOTHING
           RETURNING id""",
        {
            "id": stream_id,
            "creator": creator_id,
            "channel": channel_name(stream_id),
            "title": title,
            "category": category,
            "description": description,
            "now": now,
        },
    ).fetchone()
    return row is not None


def touch_host(conn: Conn, stream_id: UUID, now: datetime) -> bool:
    """Record the host's heartbeat; False when the stream is no longer live."""
    cur = conn.execute(
        """UPDATE streams SET last_heartbeat_at = greatest(last_heartbeat_at, %(now)s)
           WHERE id = %(id)s AND status = 'live'""",
        {"id": stream_id, "now": now},
    )
    return cur.rowcount == 1


def set_viewer_count(conn: Conn, stream_id: UUID, count: int) -> bool:
    """Store the audience size (and the peak it may raise); False when the stream is no longer live."""
    cur = conn.execute(
        """UPDATE streams SET viewer_count = %(n)s, peak_viewers = greatest(peak_viewers, %(n)s)
           WHERE id = %(id)s AND status = 'live'""",
        {"id": stream_id, "n": count},
    )
    return cur.rowcount == 1


def raise_peak(conn: Conn, stream_id: UUID, count: int) -> None:
    """Raise the peak to `count` if it is higher (writes nothing otherwise)."""
    conn.execute(
        "UPDATE streams SET peak_viewers = %(n)s WHERE id = %(id)s AND status = 'live' AND peak_viewers < %(n)s",
        {"id": stream_id, "n": count},
    )


def end(conn: Conn, stream_id: UUID, *, now: datetime, reason: EndReason) -> None:
    """End a live stream the caller holds locked."""
    conn.execute(
        """UPDATE streams SET status = 'ended', ended_at = greatest(%(now)s, started_at), end_reason = %(reason)s,
                              viewer_count = 0
           WHERE id = %(id)s AND status = 'live'""",
        {"id": stream_id, "now": now, "reason": reason},
    )


def end_silent(conn: Conn, *, cutoff: datetime, creator_id: UUID | None, limit: int) -> list[DictRow]:
    """End live streams whose host was last heard before `cutoff` (ended when last heard); their id and channel.

    Rows another transaction holds are skipped: that one is ending or touching them right now.
    """
    params: dict[str, Any] = {"cutoff": cutoff, "creator": creator_id, "limit": limit}
    return conn.execute(
        """WITH silent AS (
               SELECT id FROM streams
               WHERE status = 'live' AND last_heartbeat_at < %(cutoff)s
                 AND (%(creator)s::uuid IS NULL OR creator_id = %(creator)s::uuid)
               ORDER BY last_heartbeat_at
               LIMIT %(limit)s
               FOR UPDATE SKIP LOCKED)
           UPDATE streams s
           SET status = 'ended', ended_at = greatest(s.last_heartbeat_at, s.started_at),
               end_reason = 'heartbeat_timeout', viewer_count = 0
           FROM silent WHERE s.id = silent.id
           RETURNING s.id, s.channel""",
        params,
    ).fetchall()
