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
_BREAKER_S = 15.0  # after a Redis failure, skip Redis for this long (each failure costs up to the timeout)
_MAX_ONLINE_IDS = 5000
_MAX_LOCAL = 10_000

_lock = threading.Lock()
_last_touch: dict[UUID, float] = {}
_down_until = 0.0


def _user_key(user_id: UUID | str) -> str:
    return redis.key("presence", "user", user_id)


def _creators_key() -> str:
    return redis.key("presence", "creators")


def _available() -> bool:
    return time.monotonic() >= _down_until


def _failed(exc: Exception) -> None:
    global _down_until
    _down_until = time.monotonic() + _BREAKER_S
    log.warning("presence: redis unavailable (%s); treating everyone as offline", type(exc).__name__)


def due(user_id: UUID) -> bool:
    """Whether this instance should refresh the user's heartbeat now (cheap, in-process)."""
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
        pipe = redis.get_redis().pipeline()
        pipe.set(_user_key(user_id), "1", ex=ONLINE_TTL_S)
        if creator:
            pipe.zadd(_creators_key(), {str(user_id): now})
            pipe.zremrangebyscore(_creators_key(), "-inf", now - ONLINE_TTL_S)
            pipe.expire(_creators_key(), ONLINE_TTL_S * 10)
        pipe.exec()
    except redis.REDIS_ERRORS as exc:
        _failed(exc)
        return False
    return True


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
    found = []
    for member in members:
        try:
            found.append(UUID(str(member)))
        except ValueError:
            continue
    return found


def reset_local() -> None:
    """Forget in-process throttling and the breaker (tests)."""
    global _down_until
    with _lock:
        _last_touch.clear()
    _down_until = 0.0
