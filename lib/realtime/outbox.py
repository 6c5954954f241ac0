"""The transactional outbox: events written in the caller's transaction, sent to Pusher after the commit.

`flush_pending` (cleanup cron) retries what Pusher did not take; a slow or failing Pusher never raises into, or
holds up, a request.
"""

import json
import logging
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from lib import db
from lib.config import settings_cached
from lib.realtime.channels import NAME_RE, user_channel
from lib.realtime.client import pusher_client
from lib.realtime.events import EVENTS, Event
from lib.realtime.payloads import balance_update

log = logging.getLogger("digis.realtime")

MAX_DATA_BYTES = 10_240  # Pusher refuses event data over 10 KB (UTF-8 bytes of the JSON string)
MAX_BATCH = 10  # events per Pusher batch request


def _json_default(value: object) -> str:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable in a realtime payload")


def encode(payload: Mapping[str, Any]) -> str:
    """The event's data string exactly as sent to Pusher."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _validate(channel: str, event: str, payload: Mapping[str, Any]) -> str:
    try:
        spec = EVENTS[Event(event)]
    except ValueError:
        raise ValueError(f"unknown realtime event {event!r}; add it to lib.realtime.Event") from None
    if not NAME_RE.match(channel) or not channel.startswith(spec.prefixes):
        raise ValueError(f"{event} is not published on {channel!r}")
    keys = set(payload)
    if not spec.required <= keys <= spec.allowed:
        raise ValueError(
            f"{event} payload keys {sorted(keys)} differ from API.md: "
            f"required {sorted(spec.required)}, allowed {sorted(spec.allowed)}"
        )
    data = encode(payload)
    size = len(data.encode())
    if size > MAX_DATA_BYTES:
        raise ValueError(f"{event} payload is {size} bytes; Pusher accepts at most {MAX_DATA_BYTES}")
    return data


@dataclass
class _Batch:
    """The outbox ids one transaction on one connection published."""

    xid: str
    ids: list[int] = field(default_factory=list)


_batches: weakref.WeakKeyDictionary[db.Conn, _Batch] = weakref.WeakKeyDictionary()


def publish(conn: db.Conn, channel: str, event: str, payload: Mapping[str, Any]) -> None:
    """Queue an event in the caller's transaction; it is sent only after that transaction commits."""
    data = _validate(channel, event, payload)
    row = conn.execute(
        """INSERT INTO realtime_outbox (channel, event, payload)
           VALUES (%(channel)s, %(event)s, %(payload)s::jsonb)
           RETURNING id, pg_current_xact_id()::text AS xid""",
        {"channel": channel, "event": str(event), "payload": data},
    ).fetchone()
    assert row is not None
    _remember(conn, row["xid"], [row["id"]])


def publish_many(conn: db.Conn, events: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
    """`publish` for many events in one statement (a sweep may end thousands of calls); same checks and outbox."""
    if not events:
        return
    items = [
        f"[{json.dumps(channel)},{json.dumps(str(event))},{_validate(channel, event, payload)}]"
        for channel, event, payload in events
    ]
    rows = conn.execute(
        """INSERT INTO realtime_outbox (channel, event, payload)
           SELECT e.value ->> 0, e.value ->> 1, e.value -> 2
           FROM jsonb_array_elements(%(batch)s::jsonb) WITH ORDINALITY AS e(value, n)
           ORDER BY e.n
           RETURNING id, pg_current_xact_id()::text AS xid""",
        {"batch": "[" + ",".join(items) + "]"},
    ).fetchall()
    _remember(conn, rows[0]["xid"], sorted(r["id"] for r in rows))


def publish_balance(conn: db.Conn, user_id: UUID | str, *, balance: int, delta: int, reason: str) -> None:
    """Queue `balance:update` for the user; whoever calls a ledger write emits it (the ledger never publishes)."""
    payload = balance_update(balance=balance, delta=delta, reason=reason)
    publish(conn, user_channel(user_id), Event.BALANCE_UPDATE, payload)


def _remember(conn: db.Conn, xid: str, ids: list[int]) -> None:
    # One after-commit flush per transaction: the xid tells a new transaction on a pooled connection from the
    # one a rolled-back batch belonged to.
    batch = _batches.get(conn)
    if batch is None or batch.xid != xid:
        batch = _Batch(xid)
        _batches[conn] = batch
        db.after_commit(conn, _after_commit_flush(weakref.ref(conn), batch))
    batch.ids.extend(ids)


def _after_commit_flush(conn_ref: weakref.ref[db.Conn], batch: _Batch) -> db.AfterCommit:
    # A weak reference: the callback must not keep the connection (its key in weak dicts) alive.
    def run() -> None:
        conn = conn_ref()
        if conn is not None and _batches.get(conn) is batch:
            del _batches[conn]
        flush(batch.ids)

    return run


@settings_cached
@dataclass(frozen=True)
class FlushResult:
    """How many outbox rows were sent, and how many were tried and failed (left for a retry)."""

    sent: int = 0
    failed: int = 0


class _Refused(Exception):
    """Pusher answered with an error in a 200 body (soketi does this, even for a wrong secret)."""

    def __init__(self, code: object, error: object) -> None:
        super().__init__(f"{code}: {error}")
        self.code = code


def _trigger(rows: Sequence[Mapping[str, Any]]) -> None:
    batch = [{"channel": r["channel"], "name": r["event"], "data": encode(r["payload"])} for r in rows]
    # already_encoded: the SDK's own size check measures Python object size, not bytes; publish() checked.
    answer = pusher_client().trigger_batch(batch, already_encoded=True)
    if isinstance(answer, dict) and "error" in answer:
        raise _Refused(answer.get("code"), answer["error"])


def _is_content_error(exc: Exception) -> bool:
    """True when Pusher refused what was sent (400/413), not who sent it or whether it is up."""
    from pusher.errors import PusherBadRequest, PusherBadStatus

    if isinstance(exc, _Refused):
        return exc.code in (400, 413)
    too_large = isinstance(exc, PusherBadStatus) and str(exc).startswith("413")
    return isinstance(exc, PusherBadRequest) or too_large


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _deliver(conn: db.Conn, rows: Sequence[Mapping[str, Any]]) -> FlushResult:
    """Send rows in batches and record the outcome; stops at the first unreachable-Pusher error."""
    sent: list[int] = []
    failed: dict[int, str] = {}
    todo = deque(rows[i : i + MAX_BATCH] for i in range(0, len(rows), MAX_BATCH))
    while todo:
        chunk = todo.popleft()
        t0 = time.monotonic()
        try:
            _trigger(chunk)
        except Exception as exc:
            if _is_content_error(exc) and len(chunk) > 1:
                # Pusher refused the batch's content: resend one by one so one bad row can't hold up the rest.
                log.warning("pusher refused a batch, retrying singly: %s", _describe(exc))
                todo.extendleft([r] for r in reversed(chunk))
                continue
            failed.update((r["id"], _describe(exc)) for r in chunk)
            if not _is_content_error(exc):
                # Unreachable, timed out, 5xx or bad credentials: the rest would fail too; leave them untried.
                log.warning("pusher trigger failed after %.2fs: %s", time.monotonic() - t0, _describe(exc))
                break
            continue
        sent.extend(r["id"] for r in chunk)
    if sent:
        conn.execute(
            """UPDATE realtime_outbox
               SET sent_at = clock_timestamp(), attempts = attempts + 1, last_error = NULL
               WHERE id = ANY(%(ids)s)""",
            {"ids": sent},
        )
    if failed:
        conn.execute(
            """UPDATE realtime_outbox AS o SET attempts = o.attempts + 1, last_error = f.error
               FROM unnest(%(ids)s::bigint[], %(errors)s::text[]) AS f(id, error)
               WHERE o.id = f.id""",
            {"ids": list(failed), "errors": list(failed.values())},
        )
    return FlushResult(sent=len(sent), failed=len(failed))


_SELECT = "SELECT id, channel, event, payload FROM realtime_outbox"


def flush(ids: Iterable[int]) -> FlushResult:
    """Send these outbox rows now (skipping sent or locked ones); never raises, failures wait for a retry."""
    wanted = list(ids)
    if not wanted:
        return FlushResult()
    try:
        with db.transaction() as conn:
            rows = conn.execute(
                _SELECT + " WHERE id = ANY(%(ids)s) AND sent_at IS NULL ORDER BY id FOR UPDATE SKIP LOCKED",
                {"ids": wanted},
            ).fetchall()
            return _deliver(conn, rows)
    except Exception:
        log.exception("realtime flush failed; flush_pending will retry")
        return FlushResult(failed=len(wanted))


def flush_pending(limit: int = 100, *, max_attempts: int = 10, max_age_s: float = 3600) -> FlushResult:
    """Retry unsent rows, oldest first (the cleanup cron); rows too old or tried too often are left alone."""
    with db.transaction() as conn:
        rows = conn.execute(
            _SELECT
            + """ WHERE sent_at IS NULL AND attempts < %(max_attempts)s
                            AND created_at > now() - make_interval(secs => %(max_age)s)
                          ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED""",
            {"max_attempts": max_attempts, "max_age": max_age_s, "limit": limit},
        ).fetchall()
        return _deliver(conn, rows)


def purge(conn: db.Conn, *, older_than_s: float = 86_400) -> int:
    """Delete outbox rows older than `older_than_s`, sent or abandoned; returns how many."""
    cur = conn.execute(
        "DELETE FROM realtime_outbox WHERE created_at < now() - make_interval(secs => %(age)s)",
        {"age": older_than_s},
    )
    return cur.rowcount
