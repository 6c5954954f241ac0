"""Who is online: a heartbeat in Redis with a TTL, fed by authenticated requests and POST /users/heartbeat.

`presence:user:{id}` is SET with EX=ONLINE_TTL_S on each heartbeat; creators are also scored by last-seen time in
the sorted set `presence:creators`, so the directory can ask "which creators are online" in one call. Redis being
down makes everyone look offline; it never fails a request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from lib import redis

log = logging.getLogger("digis.presence")

ONLINE_TTL_S = 120
TOUCH_EVERY_S = 30  # one instance refreshes a user's heartbeat at most this often
_MAX_ONLINE_IDS = 5000
_MAX_LOCAL = 10_000

_lock = threading.Lock()
_last_touch: dict[object, float] = {}


def _user_key(user_id: UUID | str) -> str:
    return redis.key("presence", "user", user_id)


def _creators_key() -> str:
    return redis.key("presence", "creators")


def _available() -> bool:
    return redis.breaker.allow()


def _failed(exc: Exception) -> None:
    redis.breaker.failed(exc, "presence")
    log.warning("presence: redis unavailable (%s); treating everyone as offline", type(exc).__name__)


def due(user_id: UUID | tuple[str, UUID]) -> bool:
    """Whether this instance should refresh the user's heartbeat now (cheap, in-process; a caller that gets True
    owns this refresh). A creator's place in the online-creators set is due apart: `due(("creator", id))`."""
    now = time.monotonic()
    with _lock:
        last = _last_touch.get(user_id)
        if last is not None and now - last < TOUCH_EVERY_S:
            return False
        if len(_last_touch) >= _MAX_LOCAL:
            _last_touch.clear()
        _last_touch[user_id] = now
    return True


def touch(user_id: UUID, *, creator: bool) -> bool:
    """Record a heartbeat; True when Redis took it."""
    if not _available():
        return False
    now = time.time()
    try:
        commands: list[list[object]] = [heartbeat_command(user_id)]
        if creator:
            commands += [
                ["ZADD", _creators_key(), now, str(user_id)],
                ["ZREMRANGEBYSCORE", _creators_key(), "-inf", now - ONLINE_TTL_S],
                ["EXPIRE", _creators_key(), ONLINE_TTL_S * 10],
            ]
        redis.pipeline(commands)
    except redis.REDIS_ERRORS as exc:
        _failed(exc)
        return False
    redis.breaker.record(True)
    return True


def heartbeat_command(user_id: UUID) -> list[object]:
    """The user's heartbeat as one idempotent Redis command, for a caller batching it into its own round trip
    (the rate limiter's, so that a request does not pay a second Upstash call for presence)."""
    return ["SET", _user_key(user_id), "1", "EX", ONLINE_TTL_S]


def heartbeat(user_id: UUID, *, creator: bool) -> dict[str, Any]:
    """POST /users/heartbeat: {online, ttlSeconds}."""
    return {"online": touch(user_id, creator=creator), "ttlSeconds": ONLINE_TTL_S}


def online_among(user_ids: Iterable[UUID]) -> set[UUID]:
    """Which of these users have a live heartbeat (one MGET)."""
    ids = list(user_ids)
    if not ids or not _available():
        return set()
    try:
        values = redis.get_redis().mget(*[_user_key(u) for u in ids])
    except redis.REDIS_ERRORS as exc:
        _failed(exc)
        return set()
    redis.breaker.record(True)
    return {u for u, v in zip(ids, values, strict=False) if v is not None}


def is_online(user_id: UUID) -> bool:
    """Whether one user has a live heartbeat."""
    return user_id in online_among([user_id])


def online_creator_ids() -> list[UUID] | None:
    """Creators seen within the TTL (newest first, capped), or None when Redis cannot say."""
    if not _available():
        return None
    try:
        members = redis.get_redis().zrange(
            _creators_key(), "+inf", time.time() - ONLINE_TTL_S, sortby="BYSCORE", rev=True, offset=0,
            count=_MAX_ONLINE_IDS,
        )  # fmt: skip
    except redis.REDIS_ERRORS as exc:
        _failed(exc)
        return None
    redis.breaker.record(True)
    found = []
    for member in members:
        try:
            found.append(UUID(str(member)))
        except ValueError:
            continue
    return found


def reset_local() -> None:
    """Forget in-process throttling and close the Redis breaker (tests)."""
    with _lock:
        _last_touch.clear()
    redis.breaker.reset()
