"""Realtime (Pusher): channel names, event payloads, a transactional outbox and channel authorization.

Events are written to `realtime_outbox` in the caller's transaction (`publish`), sent after the commit
(`flush`), and retried by the cleanup cron (`flush_pending`) when Pusher was unreachable. A slow or failing
Pusher never raises into, or holds up, a request.
"""

import enum
import json
import logging
import re
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict
from uuid import UUID

from lib import db
from lib.config import get_settings, settings_cached
from lib.errors import BadRequest

if TYPE_CHECKING:
    import pusher

log = logging.getLogger("digis.realtime")

MAX_DATA_BYTES = 10_240  # Pusher refuses event data over 10 KB (UTF-8 bytes of the JSON string)
MAX_BATCH = 10  # events per Pusher batch request
_NAME_RE = re.compile(r"\A[-a-zA-Z0-9_=@,.;]{1,200}\Z")  # Pusher's channel-name alphabet and length
_SOCKET_ID_RE = re.compile(r"\A\d+\.\d+\Z")

USER_PREFIX = "private-user-"
CALL_PREFIX = "private-call-"
STREAM_PREFIX = "private-stream-"  # private, not presence: Pusher caps presence channels at 100 members


def _channel(prefix: str, suffix: object) -> str:
    name = f"{prefix}{suffix}"
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid Pusher channel name: {name!r}")
    return name


def user_channel(user_id: UUID | str) -> str:
    """`private-user-{userId}`: one user's notifications."""
    return _channel(USER_PREFIX, user_id)


def call_channel(channel: str) -> str:
    """`private-call-{channel}`: both participants of a call."""
    return _channel(CALL_PREFIX, channel)


def stream_channel(channel: str) -> str:
    """`private-stream-{channel}`: a live stream's audience (any size; counts come from webhooks)."""
    return _channel(STREAM_PREFIX, channel)


class Event(enum.StrEnum):
    """Every event name the frontend listens for (API.md, Realtime)."""

    CALL_REQUEST = "call:request"
    CALL_ACCEPTED = "call:accepted"
    CALL_REJECTED = "call:rejected"
    CALL_CANCELLED = "call:cancelled"
    CALL_ENDED = "call:ended"
    BALANCE_UPDATE = "balance:update"
    TIP_RECEIVED = "tip:received"
    CALL_MINUTE_BILLED = "call:minute_billed"
    CALL_INSUFFICIENT_FUNDS = "call:insufficient_funds"
    SESSION_UPDATED = "session:updated"
    SESSION_DUE = "session:due"
    STREAM_TIP = "tip-received"
    STREAM_GIFT = "gift-received"
    STREAM_ENDED = "stream-ended"
    VIEWER_COUNT = "viewer-count"


# Payloads: keys are camelCase exactly as API.md; ids are strings, timestamps ISO 8601, tokens integers.


class CallRequest(TypedDict):
    """`call:request` on the callee's user channel."""

    callId: str
    channel: str
    callType: str
    fanId: str
    creatorId: str
    rate: int
    fanName: str
    creatorName: str
    expiresAt: str


class CallState(TypedDict):
    """`call:accepted|rejected|cancelled|ended` on user channels, `call:ended` on the call channel."""

    callId: str
    channel: str
    state: str
    endReason: NotRequired[str]


class BalanceUpdate(TypedDict):
    """`balance:update` on the user's channel."""

    balance: int
    delta: int
    reason: str


class TipReceived(TypedDict):
    """`tip:received` on the creator's user channel."""

    tipId: str
    amountTokens: int
    fromUserId: str
    fromUsername: str


class MinuteBilled(TypedDict):
    """`call:minute_billed` on the call channel."""

    callId: str
    minute: int
    fanBalance: int


class InsufficientFunds(TypedDict):
    """`call:insufficient_funds` on the call channel."""

    callId: str
    minuteBilled: int
    fanBalance: int
    tokensNeeded: int


class SessionUpdated(TypedDict):
    """`session:updated` on both parties' user channels: a scheduled call was requested, answered or moved."""

    requestId: str
    status: str
    requestType: str
    callType: str
    fanId: str
    creatorId: str
    scheduledAt: str
    byUserId: str | None


class SessionDue(TypedDict):
    """`session:due` on both parties' user channels: a scheduled call's time came and it is ringing now."""

    requestId: str
    callId: str
    channel: str
    callType: str
    fanId: str
    creatorId: str
    rate: int
    scheduledAt: str


class StreamTip(TypedDict):
    """`tip-received` on the stream's channel (the stream pages read channel, amount, sender, message)."""

    tipId: str
    streamId: str
    channel: str  # the stream's Agora channel, which the pages compare with their own
    amount: int
    amountTokens: int
    sender: str  # display name
    fromUsername: str
    message: str | None


class StreamGift(TypedDict):
    """`gift-received` on the stream's channel (the pages read channel, quantity, totalValue, emoji, sender)."""

    giftId: str
    streamId: str
    channel: str
    giftType: str
    name: str
    emoji: str
    rarity: str
    quantity: int
    unitCost: int
    totalValue: int  # tokens: unitCost x quantity
    amount: int  # the same, for handlers that read `amount`
    sender: str
    fromUsername: str


class StreamEnded(TypedDict):
    """`stream-ended` on the stream's channel (the pages compare `channel`; profiles compare `creatorId`)."""

    streamId: str
    channel: str
    creatorId: str


class ViewerCount(TypedDict):
    """`viewer-count` on the stream's channel (StreamingLayout reads channel or streamId, and count)."""

    streamId: str
    channel: str
    count: int


def _iso(value: datetime) -> str:
    return value.isoformat()


def call_request(
    *,
    call_id: UUID,
    channel: str,
    call_type: str,
    fan_id: UUID,
    creator_id: UUID,
    rate: int,
    fan_name: str,
    creator_name: str,
    expires_at: datetime,
) -> CallRequest:
    """Payload of `call:request`."""
    return CallRequest(
        callId=str(call_id),
        channel=channel,
        callType=call_type,
        fanId=str(fan_id),
        creatorId=str(creator_id),
        rate=rate,
        fanName=fan_name,
        creatorName=creator_name,
        expiresAt=_iso(expires_at),
    )


def call_state(*, call_id: UUID, channel: str, state: str, end_reason: str | None = None) -> CallState:
    """Payload of `call:accepted`, `call:rejected`, `call:cancelled` and `call:ended`."""
    payload = CallState(callId=str(call_id), channel=channel, state=state)
    if end_reason is not None:
        payload["endReason"] = end_reason
    return payload


def balance_update(*, balance: int, delta: int, reason: str) -> BalanceUpdate:
    """Payload of `balance:update`."""
    return BalanceUpdate(balance=balance, delta=delta, reason=reason)


def tip_received(*, tip_id: UUID, amount_tokens: int, from_user_id: UUID, from_username: str) -> TipReceived:
    """Payload of `tip:received`."""
    return TipReceived(
        tipId=str(tip_id),
        amountTokens=amount_tokens,
        fromUserId=str(from_user_id),
        fromUsername=from_username,
    )


def minute_billed(*, call_id: UUID, minute: int, fan_balance: int) -> MinuteBilled:
    """Payload of `call:minute_billed`."""
    return MinuteBilled(callId=str(call_id), minute=minute, fanBalance=fan_balance)


def insufficient_funds(
    *, call_id: UUID, minute_billed: int, fan_balance: int, tokens_needed: int
) -> InsufficientFunds:
    """Payload of `call:insufficient_funds`."""
    return InsufficientFunds(
        callId=str(call_id), minuteBilled=minute_billed, fanBalance=fan_balance, tokensNeeded=tokens_needed
    )


def session_updated(
    *,
    request_id: UUID,
    status: str,
    request_type: str,
    call_type: str,
    fan_id: UUID,
    creator_id: UUID,
    scheduled_at: datetime,
    by_user_id: UUID | None,
) -> SessionUpdated:
    """Payload of `session:updated`."""
    return SessionUpdated(
        requestId=str(request_id),
        status=status,
        requestType=request_type,
        callType=call_type,
        fanId=str(fan_id),
        creatorId=str(creator_id),
        scheduledAt=_iso(scheduled_at),
        byUserId=str(by_user_id) if by_user_id else None,
    )


def session_due(
    *,
    request_id: UUID,
    call_id: UUID,
    channel: str,
    call_type: str,
    fan_id: UUID,
    creator_id: UUID,
    rate: int,
    scheduled_at: datetime,
) -> SessionDue:
    """Payload of `session:due`."""
    return SessionDue(
        requestId=str(request_id),
        callId=str(call_id),
        channel=channel,
        callType=call_type,
        fanId=str(fan_id),
        creatorId=str(creator_id),
        rate=rate,
        scheduledAt=_iso(scheduled_at),
    )


def stream_tip(
    *,
    tip_id: UUID,
    stream_id: UUID,
    channel: str,
    amount_tokens: int,
    sender: str,
    from_username: str,
    message: str | None,
) -> StreamTip:
    """Payload of `tip-received`."""
    return StreamTip(
        tipId=str(tip_id),
        streamId=str(stream_id),
        channel=channel,
        amount=amount_tokens,
        amountTokens=amount_tokens,
        sender=sender,
        fromUsername=from_username,
        message=message,
    )


def stream_gift(
    *,
    gift_id: UUID,
    stream_id: UUID,
    channel: str,
    gift_type: str,
    name: str,
    emoji: str,
    rarity: str,
    quantity: int,
    unit_cost: int,
    sender: str,
    from_username: str,
) -> StreamGift:
    """Payload of `gift-received`."""
    return StreamGift(
        giftId=str(gift_id),
        streamId=str(stream_id),
        channel=channel,
        giftType=gift_type,
        name=name,
        emoji=emoji,
        rarity=rarity,
        quantity=quantity,
        unitCost=unit_cost,
        totalValue=unit_cost * quantity,
        amount=unit_cost * quantity,
        sender=sender,
        fromUsername=from_username,
    )


def stream_ended(*, stream_id: UUID, channel: str, creator_id: UUID) -> StreamEnded:
    """Payload of `stream-ended`."""
    return StreamEnded(streamId=str(stream_id), channel=channel, creatorId=str(creator_id))


def viewer_count(*, stream_id: UUID, channel: str, count: int) -> ViewerCount:
    """Payload of `viewer-count`."""
    return ViewerCount(streamId=str(stream_id), channel=channel, count=count)


@dataclass(frozen=True)
class _Spec:
    prefixes: tuple[str, ...]
    payload: Any  # the TypedDict class

    @property
    def required(self) -> frozenset[str]:
        return frozenset(self.payload.__required_keys__)

    @property
    def allowed(self) -> frozenset[str]:
        return self.required | frozenset(self.payload.__optional_keys__)


# Which channels carry which event, with which payload: publish() refuses anything else.
EVENTS: dict[Event, _Spec] = {
    Event.CALL_REQUEST: _Spec((USER_PREFIX,), CallRequest),
    Event.CALL_ACCEPTED: _Spec((USER_PREFIX,), CallState),
    Event.CALL_REJECTED: _Spec((USER_PREFIX,), CallState),
    Event.CALL_CANCELLED: _Spec((USER_PREFIX,), CallState),
    Event.CALL_ENDED: _Spec((USER_PREFIX, CALL_PREFIX), CallState),
    Event.BALANCE_UPDATE: _Spec((USER_PREFIX,), BalanceUpdate),
    Event.TIP_RECEIVED: _Spec((USER_PREFIX,), TipReceived),
    Event.CALL_MINUTE_BILLED: _Spec((CALL_PREFIX,), MinuteBilled),
    Event.CALL_INSUFFICIENT_FUNDS: _Spec((CALL_PREFIX,), InsufficientFunds),
    Event.SESSION_UPDATED: _Spec((USER_PREFIX,), SessionUpdated),
    Event.SESSION_DUE: _Spec((USER_PREFIX,), SessionDue),
    Event.STREAM_TIP: _Spec((STREAM_PREFIX,), StreamTip),
    Event.STREAM_GIFT: _Spec((STREAM_PREFIX,), StreamGift),
    Event.STREAM_ENDED: _Spec((STREAM_PREFIX,), StreamEnded),
    Event.VIEWER_COUNT: _Spec((STREAM_PREFIX,), ViewerCount),
}


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
    if not _NAME_RE.match(channel) or not channel.startswith(spec.prefixes):
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
def _client() -> "pusher.Pusher":
    import pusher  # imported here so functions that never publish don't pay for it at cold start

    s = get_settings()
    return pusher.Pusher(
        app_id=s.pusher_app_id,
        key=s.pusher_key,
        secret=s.pusher_secret.get_secret_value(),
        ssl=s.pusher_use_tls,
        host=s.pusher_host or None,
        port=s.pusher_port,
        cluster=s.pusher_cluster or None,
        timeout=s.pusher_timeout_s,  # connect and read: a hanging Pusher costs at most this per flush
    )


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
    answer = _client().trigger_batch(batch, already_encoded=True)
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


def authorize_channel(
    socket_id: str, channel_name: str, *, presence_user: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Pusher's signature for a private or presence subscription; access rules belong to the caller.

    `presence_user` is Pusher's channel data for presence channels: `{"user_id": ..., "user_info": {...}}`; a
    private channel has none, so it is ignored there (a stream's channel became private: callers may still pass it).
    """
    if not _SOCKET_ID_RE.match(socket_id):
        raise BadRequest("socket_id is not a Pusher socket id.", code="INVALID_SOCKET_ID")
    if not _NAME_RE.match(channel_name) or not channel_name.startswith(("private-", "presence-")):
        raise BadRequest("channel_name is not a private or presence channel.", code="INVALID_CHANNEL")
    custom: dict[str, Any] | None = None
    if channel_name.startswith("presence-"):
        if presence_user is None or presence_user.get("user_id") in (None, ""):
            raise ValueError("a presence channel needs presence_user with a user_id")
        user_info = dict(presence_user.get("user_info") or {})
        custom = {"user_id": str(presence_user["user_id"]), "user_info": user_info}
    return {str(k): str(v) for k, v in _client().authenticate(channel_name, socket_id, custom).items()}
