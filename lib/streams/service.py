"""Streams: going live, joining, heartbeats from both sides, ending, the directory and the stale sweep.

A stream is `live` from go-live until its host ends it or the sweep finds the host silent for HOST_TIMEOUT_S;
then `ended` for good. Viewer counts come from Redis heartbeats (lib.streams.viewers) and are written back to
the row, which is what the directory sorts by and what it shows while Redis is down. Every event is published
through the realtime outbox, so it reaches Pusher only if the change it announces commits.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

from lib import agora, db, realtime
from lib.db import Conn
from lib.errors import BadRequest, Forbidden, NotFound
from lib.realtime import Event
from lib.streams import queries, viewers
from lib.streams.models import (
    Directory,
    DirectoryEntry,
    EndAnswer,
    EndedStream,
    GoLive,
    GoLiveAnswer,
    HeartbeatAnswer,
    HostAgora,
    JoinAnswer,
    JoinedStream,
    LeaveAnswer,
    LiveStream,
    Stream,
    StreamPulse,
)
from lib.users import User

HOST_TIMEOUT_S = 120  # "host silent for two minutes": the sweep ends the stream
HOST_HEARTBEAT_S = 30  # what the host is told; four may be missed before the sweep ends the stream
VIEWER_HEARTBEAT_S = 15  # what a viewer is told; three may be missed before they stop counting
_SWEEP_BATCH = 500


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _find(conn: Conn, ref: str, *, lock: bool = False) -> Stream:
    stream = queries.find(conn, ref, lock=lock)
    if stream is None:
        raise NotFound("Stream not found", code="STREAM_NOT_FOUND")
    return stream


def _not_live(stream: Stream) -> BadRequest:
    return BadRequest("This stream is not live", code="STREAM_NOT_LIVE", streamId=str(stream.id))


def _require_live(stream: Stream) -> None:
    if not stream.is_live:
        raise _not_live(stream)


def _after_end(conn: Conn, ended: list[tuple[UUID, str]]) -> None:
    """Tell each ended stream's audience (stream:ended), and drop its viewer set once that is committed."""
    for stream_id, channel in ended:
        realtime.publish(
            conn,
            realtime.stream_channel(channel),
            Event.STREAM_ENDED,
            realtime.stream_ended(stream_id=stream_id, channel=channel),
        )
    if ended:
        db.after_commit(conn, lambda: viewers.forget([sid for sid, _ in ended]))


# ---- host ----------------------------------------------------------------------------------------------------


def go_live(conn: Conn, creator: User, body: GoLive, *, now: datetime | None = None) -> GoLiveAnswer:
    """Start the creator's stream and mint their host token; 400 ALREADY_LIVE (with streamId) if one is live."""
    now = _now(now)
    # A stream whose app died must not keep its creator off the air until the next cron run.
    end_stale_streams(conn, now, creator_id=creator.id)
    stream_id = uuid.uuid4()
    if not queries.insert_live(
        conn,
        stream_id=stream_id,
        creator_id=creator.id,
        title=body.title,
        category=body.category or None,
        description=body.description or None,
        now=now,
    ):
        live = queries.live_of_creator(conn, creator.id)
        raise BadRequest(
            "You are already live",
            code="ALREADY_LIVE",
            streamId=str(live.id) if live else None,
            channel=live.channel if live else None,
        )
    channel = queries.channel_name(stream_id)
    uid = agora.uid_for(conn, creator.id)
    expires_at = int(now.timestamp()) + agora.STREAM_TOKEN_TTL_S
    return GoLiveAnswer(
        stream=LiveStream(id=stream_id, channel=channel, title=body.title, status="live", startedAt=now),
        agora=HostAgora(
            appId=agora.app_id(),
            token=agora.rtc_token(channel, uid, role="host", expires_at=expires_at),
            channel=channel,
            uid=uid,
            expiresAt=datetime.fromtimestamp(expires_at, UTC),
        ),
    )


def end_stream(conn: Conn, stream_id: UUID, user: User, *, now: datetime | None = None) -> EndAnswer:
    """The host ends their stream (again: the same summary); publishes stream:ended once."""
    stream = _find(conn, str(stream_id), lock=True)
    if stream.creator_id != user.id:
        raise Forbidden("Only the host can end this stream", code="NOT_STREAM_HOST")
    if stream.is_live:
        queries.end(conn, stream.id, now=_now(now), reason="host")
        _after_end(conn, [(stream.id, stream.channel)])
        stream = _find(conn, str(stream_id))
    return EndAnswer(
        stream=EndedStream(
            id=stream.id,
            durationSeconds=stream.duration_seconds,
            peakViewers=stream.peak_viewers,
            tipsTokens=stream.tips_tokens,
        )
    )


def end_stale_streams(
    conn: Conn, now: datetime, *, creator_id: UUID | None = None, limit: int = _SWEEP_BATCH
) -> int:
    """End live streams whose host has been silent for HOST_TIMEOUT_S (the cleanup cron); how many ended."""
    ended = queries.end_silent(
        conn, cutoff=now - timedelta(seconds=HOST_TIMEOUT_S), creator_id=creator_id, limit=limit
    )
    _after_end(conn, [(row["id"], row["channel"]) for row in ended])
    return len(ended)


# ---- audience ------------------------------------------------------------------------------------------------


def join(conn: Conn, ref: str, viewer: User, *, now: datetime | None = None) -> JoinAnswer:
    """A viewer joins a live stream (by id or channel): an audience token; counts them as watching."""
    now = _now(now)
    stream = _find(conn, ref)
    _require_live(stream)
    if viewer.id != stream.creator_id:  # the host watching their own stream is not audience
        _observe(conn, stream, viewers.touch(stream.id, viewer.id, now.timestamp()))
    uid = agora.uid_for(conn, viewer.id)
    expires_at = int(now.timestamp()) + agora.STREAM_TOKEN_TTL_S
    return JoinAnswer(
        stream=JoinedStream(
            id=stream.id,
            channel=stream.channel,
            title=stream.title,
            creator_id=stream.creator_id,
            creator_username=stream.creator_username,
        ),
        agoraToken=agora.rtc_token(stream.channel, uid, role="audience", expires_at=expires_at),
        uid=uid,
    )


def heartbeat(conn: Conn, ref: str, user: User, *, now: datetime | None = None) -> HeartbeatAnswer:
    """Liveness from either side: the host keeps the stream on air, a viewer keeps being counted."""
    now = _now(now)
    stream = _find(conn, ref)
    _require_live(stream)
    if user.id == stream.creator_id:
        if not queries.touch_host(conn, stream.id, now):  # ended since we read it
            raise _not_live(stream)
        count = _observe(conn, stream, viewers.count(stream.id, now.timestamp()))
        return HeartbeatAnswer(stream=_pulse(stream, count), role="host", nextHeartbeatIn=HOST_HEARTBEAT_S)
    count = _observe(conn, stream, viewers.touch(stream.id, user.id, now.timestamp()))
    return HeartbeatAnswer(stream=_pulse(stream, count), role="viewer", nextHeartbeatIn=VIEWER_HEARTBEAT_S)


def leave(conn: Conn, ref: str, user: User, *, now: datetime | None = None) -> LeaveAnswer:
    """A viewer leaves: they stop counting now rather than when their heartbeat expires (harmless repeated)."""
    stream = _find(conn, ref)
    count = 0
    if stream.is_live:
        count = stream.viewer_count
        if user.id != stream.creator_id:
            count = _observe(conn, stream, viewers.leave(stream.id, user.id, _now(now).timestamp()))
    return LeaveAnswer(stream=_pulse(stream, count))


def _pulse(stream: Stream, count: int) -> StreamPulse:
    return StreamPulse(id=stream.id, status=stream.status, viewerCount=count)


def _observe(conn: Conn, stream: Stream, count: int | None) -> int:
    """Write back a fresh audience size: the peak always, the count and viewers:update at most once a second.

    A change that lands inside another's second is written by the next heartbeat from either side (the
    host's come every HOST_HEARTBEAT_S), so the stored count converges without a timer.
    """
    if count is None:  # Redis cannot say: the last stored count stands
        return stream.viewer_count
    if count != stream.viewer_count and viewers.claim_announcement(stream.id):
        if queries.set_viewer_count(conn, stream.id, count):
            realtime.publish(
                conn,
                realtime.stream_channel(stream.channel),
                Event.VIEWERS_UPDATE,
                realtime.viewers_update(count=count),
            )
    elif count > stream.peak_viewers:
        queries.raise_peak(conn, stream.id, count)
    return count


# ---- directory -----------------------------------------------------------------------------------------------


def directory(conn: Conn, *, limit: int, offset: int) -> Directory:
    """The public live directory, most watched first, with the channel each stream is watched on."""
    rows, total = queries.directory(conn, limit=limit, offset=offset)
    return Directory(
        streams=[DirectoryEntry.model_validate(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
        hasMore=offset + len(rows) < total,
    )
