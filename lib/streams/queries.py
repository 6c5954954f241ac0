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
    " s.started_at, s.ended_at, s.end_reason, s.last_heartbeat_at, s.viewer_count, s.peak_viewers, s.tips_tokens,"
    " s.host_in_channel, s.host_lease_until, s.agora_audience, s.pusher_subscribers"
)
_SELECT = f"SELECT {_COLUMNS} FROM streams s JOIN users u ON u.id = s.creator_id"  # noqa: S608
MAX_REF_LENGTH = 200  # a Pusher channel name's limit; anything longer names no stream


def channel_name(stream_id: UUID) -> str:
    """The stream's Agora channel (and `private-stream-{channel}`): valid in both alphabets, 39 characters."""
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
    """A stream by id, by channel, or by its creator's username (their live stream, else their latest one).

    `lock` holds its row until the transaction ends.
    """
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
    if row is None and isinstance(key, str):
        # Viewers are sent to /stream/{creator.username} (profile, explore): that creator's stream.
        row = conn.execute(
            f"""{_SELECT} WHERE lower(u.username) = lower(%(ref)s)
                ORDER BY s.status = 'live' DESC, s.started_at DESC LIMIT 1
                {"FOR UPDATE OF s" if lock else ""}""",
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
                  u.profile_pic_url AS creator_avatar, s.title, s.category, s.viewer_count, s.started_at,
                  coalesce(u.banner_url, u.profile_pic_url) AS thumbnail, s.tags, s.tips_tokens AS tips
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
    tags: list[str],
    now: datetime,
    lease_until: datetime,
) -> bool:
    """A new live stream; False when the creator already has one (the one-live-per-creator index)."""
    row = conn.execute(
        """INSERT INTO streams (id, creator_id, channel, title, category, description, tags, status, started_at,
                                last_heartbeat_at, host_lease_until)
           VALUES (%(id)s, %(creator)s, %(channel)s, %(title)s, %(category)s, %(description)s, %(tags)s, 'live',
                   %(now)s, %(now)s, %(lease)s)
           ON CONFLICT (creator_id) WHERE status = 'live' DO NOTHING
           RETURNING id""",
        {
            "id": stream_id,
            "creator": creator_id,
            "channel": channel_name(stream_id),
            "title": title,
            "category": category,
            "description": description,
            "tags": tags,
            "now": now,
            "lease": lease_until,
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
                              viewer_count = 0, agora_audience = 0, pusher_subscribers = 0,
                              host_in_channel = false
           WHERE id = %(id)s AND status = 'live'""",
        {"id": stream_id, "now": now, "reason": reason},
    )
    conn.execute("DELETE FROM stream_audience WHERE stream_id = %(id)s", {"id": stream_id})


# A live stream is kept on air by any of: its host heard within the timeout (go-live, heartbeat route, token
# renewal, an Agora join or leave event), or the host's token lease while Agora says the host is in the channel
# (or, when Agora's notifications are not configured, while the lease lasts at all).
_ALIVE = """(s.last_heartbeat_at >= %(cutoff)s
             OR (s.host_lease_until > %(now)s AND (s.host_in_channel OR (%(lease_alone)s AND s.host_presence_at IS NULL))))"""


def end_silent(
    conn: Conn,
    *,
    now: datetime,
    cutoff: datetime,
    lease_alone: bool,
    creator_id: UUID | None = None,
    stream_id: UUID | None = None,
    limit: int,
) -> list[DictRow]:
    """End live streams nothing keeps alive (`_ALIVE`), as of when the host was last heard; id, channel, creator.

    Rows another transaction holds are skipped: that one is ending or touching them right now.
    """
    params: dict[str, Any] = {
        "now": now,
        "cutoff": cutoff,
        "lease_alone": lease_alone,
        "creator": creator_id,
        "stream": stream_id,
        "limit": limit,
    }
    ended = conn.execute(
        f"""WITH silent AS (
               SELECT s.id FROM streams s
               WHERE s.status = 'live' AND s.last_heartbeat_at < %(cutoff)s AND NOT {_ALIVE}
                 AND (%(creator)s::uuid IS NULL OR s.creator_id = %(creator)s::uuid)
                 AND (%(stream)s::uuid IS NULL OR s.id = %(stream)s::uuid)
               ORDER BY s.last_heartbeat_at
               LIMIT %(limit)s
               FOR UPDATE SKIP LOCKED)
           UPDATE streams s
           SET status = 'ended', ended_at = greatest(s.last_heartbeat_at, s.started_at),
               end_reason = 'heartbeat_timeout', viewer_count = 0, agora_audience = 0, pusher_subscribers = 0,
               host_in_channel = false
           FROM silent WHERE s.id = silent.id
           RETURNING s.id, s.channel, s.creator_id""",  # noqa: S608 - _ALIVE is a constant
        params,
    ).fetchall()
    if ended:
        conn.execute(
            "DELETE FROM stream_audience WHERE stream_id = ANY(%(ids)s)", {"ids": [r["id"] for r in ended]}
        )
    return ended


def next_check_at(conn: Conn, stream_id: UUID, *, lease_alone: bool) -> datetime | None:
    """When a live stream whose host is not in the channel could next be found silent; None if not needed."""
    row = conn.execute(
        """SELECT CASE WHEN host_in_channel THEN NULL
                       WHEN %(lease_alone)s AND host_presence_at IS NULL
                            THEN greatest(last_heartbeat_at, host_lease_until)
                       ELSE last_heartbeat_at END AS at
           FROM streams WHERE id = %(id)s AND status = 'live'""",
        {"id": stream_id, "lease_alone": lease_alone},
    ).fetchone()
    return row["at"] if row else None


# ---- liveness and audience signals ---------------------------------------------------------------------------


def renew_lease(conn: Conn, channel: str, uid: int, *, heard_at: datetime, lease_until: datetime) -> bool:
    """The host of the live stream on `channel` (Agora uid `uid`) got a token: heard now, leased until it expires."""
    cur = conn.execute(
        """UPDATE streams s
           SET last_heartbeat_at = greatest(s.last_heartbeat_at, %(heard)s),
               host_lease_until = greatest(coalesce(s.host_lease_until, %(lease)s), %(lease)s)
           FROM users u
           WHERE s.channel = %(channel)s AND s.status = 'live' AND u.id = s.creator_id AND u.agora_uid = %(uid)s""",
        {"channel": channel, "uid": uid, "heard": heard_at, "lease": lease_until},
    )
    return cur.rowcount == 1


def lock_live_by_channel(conn: Conn, channel: str) -> DictRow | None:
    """The live stream on `channel` with its host's Agora uid and audience counts, locked for this transaction."""
    return conn.execute(
        """SELECT s.id, s.channel, s.creator_id, u.agora_uid AS host_uid, s.viewer_count, s.peak_viewers,
                  s.agora_audience, s.pusher_subscribers, s.pusher_count_ms
           FROM streams s JOIN users u ON u.id = s.creator_id
           WHERE s.channel = %(c)s AND s.status = 'live'
           FOR UPDATE OF s""",
        {"c": channel},
    ).fetchone()


def set_host_presence(conn: Conn, stream_id: UUID, *, present: bool, at: datetime, seq: int) -> bool:
    """Agora says the host joined or left at `at` (its `seq` orders events of one second); False when stale."""
    cur = conn.execute(
        """UPDATE streams
           SET host_in_channel = %(present)s, host_presence_at = %(at)s, host_presence_seq = %(seq)s,
               last_heartbeat_at = greatest(last_heartbeat_at, %(at)s)
           WHERE id = %(id)s AND status = 'live'
             AND (host_presence_at IS NULL OR (host_presence_at, host_presence_seq) < (%(at)s, %(seq)s))""",
        {"id": stream_id, "present": present, "at": at, "seq": seq},
    )
    return cur.rowcount == 1


def set_audience_member(
    conn: Conn, stream_id: UUID, uid: int, *, present: bool, at: datetime, seq: int
) -> bool:
    """Agora says `uid` joined or left the audience at `at`; False when an as-new or newer event was applied."""
    row = conn.execute(
        """INSERT INTO stream_audience AS a (stream_id, uid, present, event_at, seq)
           VALUES (%(id)s, %(uid)s, %(present)s, %(at)s, %(seq)s)
           ON CONFLICT (stream_id, uid) DO UPDATE
               SET present = excluded.present, event_at = excluded.event_at, seq = excluded.seq
               WHERE (a.event_at, a.seq) < (excluded.event_at, excluded.seq)
           RETURNING 1""",
        {"id": stream_id, "uid": uid, "present": present, "at": at, "seq": seq},
    ).fetchone()
    return row is not None


def clear_audience(conn: Conn, stream_id: UUID, *, at: datetime) -> None:
    """Agora destroyed the channel at `at`: nobody is in it (events dated later still count)."""
    conn.execute(
        """UPDATE stream_audience SET present = false, event_at = %(at)s, seq = 0
           WHERE stream_id = %(id)s AND present AND event_at <= %(at)s""",
        {"id": stream_id, "at": at},
    )
    conn.execute(
        """UPDATE streams SET host_in_channel = false, host_presence_at = %(at)s, host_presence_seq = 0,
                              last_heartbeat_at = greatest(last_heartbeat_at, %(at)s)
           WHERE id = %(id)s AND status = 'live' AND (host_presence_at IS NULL OR host_presence_at <= %(at)s)""",
        {"id": stream_id, "at": at},
    )


def count_audience(conn: Conn, stream_id: UUID) -> int:
    """How many uids Agora says are watching (the stream's row is locked: no concurrent change is missed)."""
    row = conn.execute(
        "SELECT count(*) AS n FROM stream_audience WHERE stream_id = %(id)s AND present", {"id": stream_id}
    ).fetchone()
    return int(row["n"]) if row else 0


def set_source_counts(
    conn: Conn,
    stream_id: UUID,
    *,
    agora_audience: int,
    pusher_subscribers: int,
    pusher_count_ms: int,
    total: int,
) -> None:
    """Store each source's audience size and the stream's viewer count (the largest), raising the peak."""
    conn.execute(
        """UPDATE streams SET agora_audience = %(a)s, pusher_subscribers = %(p)s, pusher_count_ms = %(ms)s,
                              viewer_count = %(n)s, peak_viewers = greatest(peak_viewers, %(n)s)
           WHERE id = %(id)s AND status = 'live'""",
        {"id": stream_id, "a": agora_audience, "p": pusher_subscribers, "ms": pusher_count_ms, "n": total},
    )
