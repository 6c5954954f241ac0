"""Streams: going live, joining, liveness signals, ending, the directories and the stale sweep.

A stream is `live` from go-live until its host ends it or the sweep finds nothing keeping it alive; then `ended`
for good. What keeps it alive (the frontend sends no heartbeats): the host heard within HOST_TIMEOUT_S (go-live,
the heartbeat route, a token renewal, an Agora join/leave event), or the host's token lease while Agora says the
host is in the channel (without Agora notifications configured: while the lease lasts). When the host leaves the
channel a QStash check runs HOST_TIMEOUT_S later, so a stream ends minutes after its host left even on a daily cron.

Viewer counts: the largest of Agora's audience (its channel events), Pusher's subscription count on the stream's
private channel (its webhooks) and the Redis heartbeat count (lib.streams.viewers); written to the row, which the
directory sorts by. Every event goes through the realtime outbox, so it reaches Pusher only if its change commits.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from lib import agora, db, realtime
from lib.config import get_settings
from lib.db import Conn
from lib.errors import BadRequest, Forbidden, NotFound
from lib.realtime import Event
from lib.streams import queries, viewers
from lib.streams.models import (
    CheckResult,
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
    Upcoming,
)
from lib.users import User

if TYPE_CHECKING:
    from lib.jobs import JobMessage

HOST_TIMEOUT_S = 120  # "host silent for two minutes": the sweep ends the stream
HOST_HEARTBEAT_S = 30  # what the host is told; four may be missed before the sweep ends the stream
VIEWER_HEARTBEAT_S = 15  # what a viewer is told; three may be missed before they stop counting
CHECK_SLACK_S = 5  # a check job runs this long after the moment a stream could first be found silent
CHECK_JOB_PATH = "/api/jobs/check-stream"
_SWEEP_BATCH = 500

log = logging.getLogger("digis.streams")


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


def _after_end(conn: Conn, ended: list[tuple[UUID, str, UUID]]) -> None:
    """Tell each ended stream's audience (stream-ended), and drop its viewer set once that is committed."""
    for stream_id, channel, creator_id in ended:
        realtime.publish(
            conn,
            realtime.stream_channel(channel),
            Event.STREAM_ENDED,
            realtime.stream_ended(stream_id=stream_id, channel=channel, creator_id=creator_id),
        )
    if ended:
        db.after_commit(conn, lambda: viewers.forget([sid for sid, _, _ in ended]))


def _lease_alone() -> bool:
    """Without Agora's notifications nobody says the host left: the host's token lease alone keeps a stream."""
    return not get_settings().agora_ncs_secret.get_secret_value()


def schedule_check(conn: Conn, stream_id: UUID, at: datetime, now: datetime) -> int:
    """Publish (after commit) a check of the stream for when it could be found silent; seconds until it runs."""
    from lib import jobs  # the QStash SDK only for the functions that schedule a check (cold start)

    delay = max(1, int((at - now).total_seconds()) + CHECK_SLACK_S)
    jobs.publish_after_commit(
        conn,
        CHECK_JOB_PATH,
        {"streamId": str(stream_id)},
        delay_s=delay,
        dedup_id=f"stream-check-{stream_id.hex}-{int(at.timestamp())}",
    )
    return delay


# ---- host ----------------------------------------------------------------------------------------------------


def go_live(conn: Conn, creator: User, body: GoLive, *, now: datetime | None = None) -> GoLiveAnswer:
    """Start the creator's stream and mint their host token; 400 ALREADY_LIVE (with streamId) if one is live."""
    now = _now(now)
    # A stream whose app died must not keep its creator off the air until the next cron run.
    end_stale_streams(conn, now, creator_id=creator.id)
    stream_id = uuid.uuid4()
    expires_at = int(now.timestamp()) + agora.STREAM_TOKEN_TTL_S
    if not queries.insert_live(
        conn,
        stream_id=stream_id,
        creator_id=creator.id,
        title=body.title,
        category=body.category or None,
        description=body.description or None,
        tags=list(dict.fromkeys(body.tags)),
        now=now,
        lease_until=datetime.fromtimestamp(expires_at, UTC),
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
    # A host who never joins the channel: checked when the go-live itself stops counting as a sign of life.
    schedule_check(conn, stream_id, now + timedelta(seconds=HOST_TIMEOUT_S), now)
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
    """The host ends their stream (again: the same summary); publishes stream-ended once."""
    stream = _find(conn, str(stream_id), lock=True)
    if stream.creator_id != user.id:
        raise Forbidden("Only the host can end this stream", code="NOT_STREAM_HOST")
    if stream.is_live:
        queries.end(conn, stream.id, now=_now(now), reason="host")
        _after_end(conn, [(stream.id, stream.channel, stream.creator_id)])
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
    conn: Conn,
    now: datetime,
    *,
    creator_id: UUID | None = None,
    stream_id: UUID | None = None,
    limit: int = _SWEEP_BATCH,
) -> int:
    """End live streams nothing keeps alive (the module docstring's rule; the cleanup cron); how many ended."""
    ended = queries.end_silent(
        conn,
        now=now,
        cutoff=now - timedelta(seconds=HOST_TIMEOUT_S),
        lease_alone=_lease_alone(),
        creator_id=creator_id,
        stream_id=stream_id,
        limit=limit,
    )
    _after_end(conn, [(row["id"], row["channel"], row["creator_id"]) for row in ended])
    return len(ended)


def check_stream(conn: Conn, stream_id: UUID, *, now: datetime | None = None) -> CheckResult:
    """The QStash check job: end the stream if nothing keeps it alive, else check again when it could be."""
    now = _now(now)
    ended = end_stale_streams(conn, now, stream_id=stream_id) == 1
    stream = queries.find(conn, str(stream_id))
    next_in = None
    if stream is not None and stream.is_live:
        last = queries.next_check_at(conn, stream.id, lease_alone=_lease_alone())
        if last is not None:
            next_in = schedule_check(conn, stream.id, max(last + timedelta(seconds=HOST_TIMEOUT_S), now), now)
    return CheckResult(
        streamId=stream_id, status=stream.status if stream else None, ended=ended, nextCheckIn=next_in
    )


def run_check_job(conn: Conn, job: JobMessage, *, now: datetime | None = None) -> CheckResult:
    """POST /jobs/check-stream `{streamId}` (QStash, signed): `check_stream`; repeats are harmless."""
    try:
        stream_id = UUID(str(job.body.get("streamId")))
    except ValueError as exc:
        raise BadRequest("streamId must be a stream id", code="INVALID_JOB_BODY") from exc
    return check_stream(conn, stream_id, now=now)


def host_token_minted(channel: str, uid: int, role: agora.Role, expires_at: int) -> None:
    """lib.agora's listener: a host token for a live stream's channel is a sign of life and extends the lease.

    Runs in its own short transaction (token minting has no connection to give) and never raises.
    """
    if role != "host" or not channel.startswith("stream-"):
        return
    lease_until = datetime.fromtimestamp(expires_at, UTC)
    heard_at = lease_until - timedelta(seconds=agora.STREAM_TOKEN_TTL_S)  # minted at expiry minus the TTL
    try:
        with db.transaction() as conn:
            queries.renew_lease(conn, channel, uid, heard_at=heard_at, lease_until=lease_until)
    except Exception:
        log.warning(
            "stream lease renewal for %s failed; the stream keeps its previous lease", channel, exc_info=True
        )


# ---- audience ------------------------------------------------------------------------------------------------


def admit_viewer(conn: Conn, stream_id: UUID, viewer_id: UUID) -> None:
    """403 unless this viewer may watch: a class's stream admits its host and enrolled fans only."""
    from lib import (
        classes,  # imported here: only a class's stream has a guest list, and classes build on streams
    )

    classes.check_viewer(conn, stream_id, viewer_id)


def join(conn: Conn, ref: str, viewer: User, *, now: datetime | None = None) -> JoinAnswer:
    """A viewer joins a live stream (by id, channel or creator username): an audience token; counts them."""
    now = _now(now)
    stream = _find(conn, ref)
    _require_live(stream)
    admit_viewer(conn, stream.id, viewer.id)
    if viewer.id != stream.creator_id:  # the host watching their own stream is not audience
        _observe(conn, stream, viewers.touch(stream.id, viewer.id, now.timestamp()))
    uid = agora.uid_for(conn, viewer.id)
    expires_at = int(now.timestamp()) + agora.STREAM_TOKEN_TTL_S
    return JoinAnswer(
        stream=JoinedStream(
            id=stream.id,
            channel=stream.channel,
            channel_name=stream.channel,
            title=stream.title,
            category=stream.category,
            description=stream.description,
            creator_id=stream.creator_id,
            creator_username=stream.creator_username,
            status=stream.status,
            viewer_count=stream.viewer_count,
            started_at=stream.started_at,
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


def _observe(conn: Conn, stream: Stream, heartbeats: int | None) -> int:
    """Write back a fresh audience size: the peak always, the count and viewer-count at most once a second.

    The size is the largest of the heartbeat count and the webhook-fed sources on the row. A change that lands
    inside another's second is written by the next heartbeat or webhook, so the stored count converges.
    """
    if heartbeats is None:  # Redis cannot say: the last stored count stands
        return stream.viewer_count
    count = max(heartbeats, stream.agora_audience, stream.pusher_subscribers)
    if count != stream.viewer_count and viewers.claim_announcement(stream.id):
        if queries.set_viewer_count(conn, stream.id, count):
            announce_count(conn, stream.id, stream.channel, count)
    elif count > stream.peak_viewers:
        queries.raise_peak(conn, stream.id, count)
    return count


def announce_count(conn: Conn, stream_id: UUID, channel: str, count: int) -> None:
    realtime.publish(
        conn,
        realtime.stream_channel(channel),
        Event.VIEWER_COUNT,
        realtime.viewer_count(stream_id=stream_id, channel=channel, count=count),
    )


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


def upcoming() -> Upcoming:
    """Scheduled streams: the API has no way to schedule one yet (nor does the frontend call one), so none."""
    return Upcoming(streams=[], total=0)
