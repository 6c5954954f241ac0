"""Who is watching: one sorted set per stream in Redis, viewer id -> last heartbeat (unix seconds).

A viewer counts while their last heartbeat is under VIEWER_TTL_S old, so a phone that sleeps or a tab that dies
drops out by itself (Pusher's own member_removed arrives minutes late). Every write is idempotent (ZADD of a
timestamp, ZREM, ZREMRANGEBYSCORE of the expired), so a retried request cannot make the count drift.
`claim_announcement` is the per-stream throttle for `viewers:update`: SET NX with a one-second expiry.

Redis down or slow: every function answers None/False instead of raising, and after a failure Redis is not
asked again for BREAKER_COOLDOWN_S (each failure costs up to REDIS_TIMEOUT_S); callers fall back to the last
count stored in the database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from uuid import UUID

from lib import redis

log = logging.getLogger("digis.streams.viewers")

VIEWER_TTL_S = 45  # three missed viewer heartbeats
ANNOUNCE_EVERY_MS = 1000  # at most one viewers:update per stream per second
BREAKER_COOLDOWN_S = redis.BREAKER_COOLDOWN_S
# The set outlives its newest heartbeat by the TTL: after that every member has expired anyway.
_KEY_TTL_S = VIEWER_TTL_S + 15

breaker = (
    redis.breaker
)  # the instance's one Redis breaker (lib.redis), shared with limits, presence and stats


def _viewers_key(stream_id: UUID) -> str:
    return redis.key("streams", stream_id, "viewers")


def _announce_key(stream_id: UUID) -> str:
    return redis.key("streams", stream_id, "announce")


def _failed(exc: Exception) -> None:
    breaker.failed(exc, "stream viewers")
    log.warning("stream viewers: redis unavailable (%s); using stored counts", type(exc).__name__)


def touch(stream_id: UUID, viewer_id: UUID, now: float) -> int | None:
    """Record a viewer's heartbeat at `now`; the stream's audience size, or None when Redis cannot say."""
    return _count_after(stream_id, now, add=str(viewer_id))


def leave(stream_id: UUID, viewer_id: UUID, now: float) -> int | None:
    """Forget a viewer who left; the audience size left, or None when Redis cannot say."""
    return _count_after(stream_id, now, remove=str(viewer_id))


def count(stream_id: UUID, now: float) -> int | None:
    """Viewers seen within the TTL before `now`, or None when Redis cannot say."""
    return _count_after(stream_id, now)


def _count_after(
    stream_id: UUID, now: float, *, add: str | None = None, remove: str | None = None
) -> int | None:
    if not breaker.allow():
        return None
    key = _viewers_key(stream_id)
    try:
        pipe = redis.get_redis().pipeline()
        if add is not None:
            pipe.zadd(key, {add: now})
            pipe.expire(key, _KEY_TTL_S)
        if remove is not None:
            pipe.zrem(key, remove)
        pipe.zremrangebyscore(key, "-inf", now - VIEWER_TTL_S)
        pipe.zcard(key)
        answers = pipe.exec()
    except redis.REDIS_ERRORS as exc:
        _failed(exc)
        return None
    breaker.record(True)
    cardinality = answers[-1]
    assert isinstance(cardinality, int), cardinality
    return cardinality


def claim_announcement(stream_id: UUID) -> bool:
    """True for the first caller in each second per stream: that one publishes viewers:update."""
    if not breaker.allow():
        return False
    try:
        claimed = redis.get_redis().set(_announce_key(stream_id), "1", nx=True, px=ANNOUNCE_EVERY_MS)
    except redis.REDIS_ERRORS as exc:
        _failed(exc)
        return False
    breaker.record(True)
    return bool(claimed)


def forget(stream_ids: Iterable[UUID]) -> None:
    """Drop ended streams' audiences (best effort: the keys expire by themselves anyway)."""
    keys = [k for s in stream_ids for k in (_viewers_key(s), _announce_key(s))]
    if not keys or not breaker.allow():
        return
    try:
        redis.get_redis().delete(*keys)
    except redis.REDIS_ERRORS as exc:
        _failed(exc)
        return
    breaker.record(True)
