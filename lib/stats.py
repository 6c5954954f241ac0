"""Active sessions: the dashboard's hot number, served from a Redis set of active call ids.

A set, not a counter: SADD when a call connects and SREM when it ends are idempotent, so a retried request or a
redelivered job can never make the number drift. When Redis is down the number comes from the database (the
partial index on live calls), and the cleanup cron rebuilds the set from the database
(`reconcile_active_sessions`) to repair anything a Redis outage missed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from lib import db, redis

log = logging.getLogger("digis.stats")

_CHUNK = 1000  # members per SADD/SREM command


class ActiveSessions(BaseModel):
    """GET /stats/active-sessions."""

    count: int
    asOf: datetime
    source: Literal["redis", "database"]


def _key() -> str:
    return redis.key("stats", "active_calls")


def _available() -> bool:
    return redis.breaker.allow()


def _failed(exc: Exception) -> None:
    redis.breaker.failed(exc, "active sessions")
    log.warning("active sessions: redis unavailable (%s); using the database", type(exc).__name__)


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _update_set(command: Literal["sadd", "srem"], call_ids: Iterable[UUID]) -> None:
    ids = [str(i) for i in call_ids]
    if not ids or not _available():
        return
    try:
        client = redis.get_redis()
        for chunk in _chunks(ids):
            getattr(client, command)(_key(), *chunk)
    except redis.REDIS_ERRORS as exc:
        _failed(exc)
        return
    redis.breaker.record(True)


def mark_connected(call_ids: Iterable[UUID]) -> None:
    """Add connected calls to the set (never raises: the reconcile repairs a miss)."""
    _update_set("sadd", call_ids)


def mark_finished(call_ids: Iterable[UUID]) -> None:
    """Remove finished calls from the set (never raises)."""
    _update_set("srem", call_ids)


def after_commit_connected(conn: db.Conn, call_ids: list[UUID]) -> None:
    """`mark_connected` once the transaction commits."""
    ids = list(call_ids)
    db.after_commit(conn, lambda: mark_connected(ids))


def after_commit_finished(conn: db.Conn, call_ids: list[UUID]) -> None:
    """`mark_finished` once the transaction commits."""
    ids = list(call_ids)
    db.after_commit(conn, lambda: mark_finished(ids))


def count_in_database(conn: db.Conn) -> int:
    """Active calls according to the database (the partial index on live calls)."""
    row = conn.execute("SELECT count(*) AS n FROM call_sessions WHERE state = 'active'").fetchone()
    return int(row["n"]) if row else 0


def active_sessions() -> ActiveSessions:
    """The number of active calls: from Redis (no database round trip), or from the database when Redis is down."""
    now = datetime.now(UTC)
    if _available():
        try:
            count = int(redis.pipeline([["SCARD", _key()]])[0])
        except redis.REDIS_ERRORS as exc:
            _failed(exc)
        else:
            redis.breaker.record(True)
            return ActiveSessions(count=count, asOf=now, source="redis")
    with db.transaction() as conn:
        return ActiveSessions(count=count_in_database(conn), asOf=now, source="database")


def reconcile_active_sessions(conn: db.Conn) -> int | None:
    """Rebuild the Redis set from the database (cleanup cron); the count written, or None when Redis is down."""
    ids = [
        str(r["id"]) for r in conn.execute("SELECT id FROM call_sessions WHERE state = 'active'").fetchall()
    ]
    try:
        client = redis.get_redis()
        # One MULTI: readers see the old set or the new one, never an empty one in between.
        tx = client.multi()
        tx.delete(_key())
        for chunk in _chunks(ids):
            tx.sadd(_key(), *chunk)
        tx.exec()
    except redis.REDIS_ERRORS as exc:
        _failed(exc)
        return None
    redis.breaker.record(True)
    return len(ids)


def reset_local() -> None:
    """Close the Redis breaker (tests)."""
    redis.breaker.reset()
