"""Live streams (the streams issue grows this module; tips and the directory already read it)."""

from __future__ import annotations

from uuid import UUID

from psycopg.rows import DictRow

from lib.db import Conn


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
