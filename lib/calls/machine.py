"""Calls: the state machine, the one place a call changes state.

    ringing --accept (callee)--> active --end (either side) / heartbeat timeout / insufficient funds--> ended
       |--decline (callee)--> declined
       |--cancel (caller)---> cancelled
       '--45 s unanswered---> missed

Every change locks the call's row first, so concurrent requests, jobs and sweeps see one another's result.
Only the two participants see or touch a call (anyone else gets 404, as if it did not exist).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg.rows import DictRow

from lib import ledger, realtime
from lib.calls import access, billing, queries
from lib.calls.events import Announcements
from lib.calls.models import Call, CallRinging, CallType, CallView, Heartbeat, JoinInfo, Party, Summary
from lib.db import Conn
from lib.errors import BadRequest, Conflict, Forbidden, NotFound, PaymentRequired
from lib.users import User

RING_S = 45

# The only moves a call makes, and who makes each ("system": the sweeps and the ring timeout).
TRANSITIONS: dict[tuple[str, str], str] = {
    ("ringing", "active"): "callee",
    ("ringing", "declined"): "callee",
    ("ringing", "cancelled"): "caller",
    ("ringing", "missed"): "system",
    ("active", "ended"): "either",
}
_ACTOR = {to: who for (_, to), who in TRANSITIONS.items()}
_REFUSAL = {
    "callee": ("Only the person called can do this; the caller cancels", "NOT_CALLEE"),
    "caller": ("Only the caller can cancel; the person called declines", "NOT_CALLER"),
}


def _participant_call(conn: Conn, user: User, call_id: UUID) -> Call:
    """The call, locked, if the user is in it; 404 otherwise (outsiders learn nothing)."""
    call = queries.lock(conn, call_id)
    if call is None or not call.has_party(user.id):
        raise NotFound("Call not found", code="CALL_NOT_FOUND")
    return call


def _require_actor(call: Call, user: User, to: str) -> None:
    """403 unless the user is the side TRANSITIONS lets make this move."""
    who = _ACTOR[to]
    if who in _REFUSAL and user.id != (call.callee_id if who == "callee" else call.caller_id):
        detail, code = _REFUSAL[who]
        raise Forbidden(detail, code=code)


def _move(conn: Conn, call: Call, to: str, ann: Announcements, **changes: Any) -> Call:
    """Apply one transition of TRANSITIONS and announce it."""
    if (call.state, to) not in TRANSITIONS:
        raise Conflict(f"A {call.state} call cannot become {to}", code="INVALID_CALL_STATE", state=call.state)
    moved = queries.update(conn, call.id, {"state": to, **changes})
    ann.state(moved)
    return moved


def _ring_expired(call: Call, now: datetime) -> bool:
    return call.state == "ringing" and now >= call.ring_expires_at


def _miss(conn: Conn, call: Call, ann: Announcements) -> Call:
    return _move(conn, call, "missed", ann, ended_at=call.ring_expires_at, end_reason="no_answer")


def _place(
    conn: Conn,
    fan: DictRow,
    creator: DictRow,
    *,
    caller: UUID,
    call_type: CallType,
    message: str | None,
    now: datetime,
    rate: int | None = None,
) -> CallRinging:
    """Ring the callee: a new ringing call and `call:request`.

    Each participant is in at most one ringing or active call, on either side: 409 CREATOR_BUSY when the creator
    is in one, FAN_BUSY when the fan is. `rate` is an agreed per-minute price (a scheduled call's); by default the
    creator's current one.
    """
    if rate is None:
        rate = creator["video_price"] if call_type == "video" else creator["voice_price"]
    if not rate or rate <= 0:
        raise BadRequest(f"This creator does not take {call_type} calls", code="CALL_TYPE_UNAVAILABLE")
    ann = Announcements()
    # A stale ring must not keep either side busy.
    expire_stale_rings(conn, now, party_ids=[fan["id"], creator["id"]], ann=ann)
    call_id = uuid.uuid4()
    claimed = queries.claim_parties(conn, call_id, [fan["id"], creator["id"]])
    for side, code, label in ((creator, "CREATOR_BUSY", "The creator"), (fan, "FAN_BUSY", "The fan")):
        if side["id"] not in claimed:
            # The request's transaction rolls back, releasing the other side's claim with it.
            raise Conflict(
                f"{'You are' if side['id'] == caller else label + ' is'} in another call", code=code
            )
    call = queries.insert_ringing(
        conn,
        call_id=call_id,
        fan_id=fan["id"],
        creator_id=creator["id"],
        initiated_by=caller,
        call_type=call_type,
        rate=rate,
        message=message,
        now=now,
        ring_for=timedelta(seconds=RING_S),
    )
    if call is None:
        raise Conflict("The creator is in another call", code="CREATOR_BUSY")
    payload = realtime.call_request(
        call_id=call.id,
        channel=call.channel,
        call_type=call.call_type,
        fan_id=call.fan_id,
        creator_id=call.creator_id,
        rate=call.rate_per_minute,
        fan_name=queries.display_name(fan),
        creator_name=queries.display_name(creator),
        expires_at=call.ring_expires_at,
    )
    ann.events.append((realtime.user_channel(call.callee_id), realtime.Event.CALL_REQUEST, payload))
    ann.commit_with(conn)
    return CallRinging(
        callId=call.id,
        channel=call.channel,
        state=call.state,
        callType=call.call_type,
        ratePerMinute=call.rate_per_minute,
        expiresAt=call.ring_expires_at,
    )


def callable_creator(conn: Conn, creator_id: UUID) -> DictRow:
    """A real creator (never the platform's `system` account), or 404 CREATOR_NOT_FOUND."""
    creator = queries.party(conn, creator_id)
    if creator is None or not creator["is_creator"] or creator["role"] == "system":
        raise NotFound("Creator not found", code="CREATOR_NOT_FOUND")
    return creator


def callable_user(conn: Conn, user_id: UUID) -> DictRow:
    """A real user to call (never the platform's `system` account), or 404 USER_NOT_FOUND."""
    user = queries.party(conn, user_id)
    if user is None or user["role"] == "system":
        raise NotFound("User not found", code="USER_NOT_FOUND")
    return user


def require_one_minute(conn: Conn, fan_id: UUID, rate: int | None) -> None:
    """402 INSUFFICIENT_TOKENS unless the fan can pay one minute at `rate`."""
    balance = ledger.balance(conn, fan_id)
    if rate and balance < rate:
        raise PaymentRequired(
            "Insufficient tokens for one minute of this call",
            code="INSUFFICIENT_TOKENS",
            current_balance=balance,
            required_amount=rate,
        )


def place_call(
    conn: Conn,
    fan: DictRow,
    creator: DictRow,
    *,
    caller: UUID,
    call_type: CallType,
    message: str | None,
    rate: int,
    now: datetime,
) -> CallRinging:
    """Ring a call between two checked parties at an agreed rate (a scheduled call coming due)."""
    if caller == fan["id"]:
        require_one_minute(conn, fan["id"], rate)
    return _place(conn, fan, creator, caller=caller, call_type=call_type, message=message, now=now, rate=rate)


def request_call(conn: Conn, fan: User, creator_id: UUID, call_type: CallType, now: datetime) -> CallRinging:
    """A fan asks a creator for a call: 402 without one minute's tokens, 409 CREATOR_BUSY if the creator is taken."""
    if creator_id == fan.id:
        raise BadRequest("You cannot call yourself", code="CANNOT_CALL_SELF")
    creator = callable_creator(conn, creator_id)
    require_one_minute(
        conn, fan.id, creator["video_price"] if call_type == "video" else creator["voice_price"]
    )
    me = queries.party(conn, fan.id)
    assert me is not None
    return _place(conn, me, creator, caller=fan.id, call_type=call_type, message=None, now=now)


def initiate_call(
    conn: Conn, creator: User, fan_id: UUID, call_type: CallType, message: str | None, now: datetime
) -> CallRinging:
    """A creator invites a fan (the fan pays from minute 1 on accepting)."""
    if fan_id == creator.id:
        raise BadRequest("You cannot call yourself", code="CANNOT_CALL_SELF")
    fan = callable_user(conn, fan_id)
    me = queries.party(conn, creator.id)
    assert me is not None
    return _place(conn, fan, me, caller=creator.id, call_type=call_type, message=message, now=now)


def accept(conn: Conn, user: User, call_id: UUID, now: datetime) -> JoinInfo:
    """The callee answers: the call connects, minute 1 is charged (402 if the fan can't pay), a token is issued."""
    call = _participant_call(conn, user, call_id)
    _require_actor(call, user, "active")
    if call.state != "ringing":
        raise Conflict(f"The call is {call.state}", code="CALL_NOT_RINGING", state=call.state)
    if _ring_expired(call, now):
        raise Conflict("The call rang out", code="CALL_EXPIRED", state="missed")
    seen = "fan_last_seen_at" if user.id == call.fan_id else "creator_last_seen_at"
    ann = Announcements()
    call = _move(conn, call, "active", ann, connected_at=now, **{seen: now})
    charged = ledger.transfer(conn, **dataclasses.asdict(billing.minute_request(call, 1)))
    call = queries.update(conn, call.id, {"last_billed_minute": 1, "total_cost": call.rate_per_minute})
    if charged is not None:
        ann.minute_billed(call, 1, charged.from_balance)
        ann.balance(call.fan_id, charged.from_balance, -call.rate_per_minute, "call")
        ann.balance(call.creator_id, charged.to_balance, charged.creator_cut, "call_earnings")
    ann.schedule_minute(call, 2, billing.minute_starts_at(call, 2), now)
    ann.commit_with(conn)
    media = access.media_token(conn, user, call.channel, "host", billing.join_expiry(call), now)
    return JoinInfo(
        callId=call.id,
        channel=call.channel,
        appId=media.appId,
        token=media.token,
        uid=media.uid,
        callType=call.call_type,
        ratePerMinute=call.rate_per_minute,
        expiresIn=media.expiresIn,
        expiresAt=media.expiresAt,
    )


def decline(conn: Conn, user: User, call_id: UUID, now: datetime) -> Summary:
    """The callee refuses a ringing call (repeating it is harmless)."""
    call = _participant_call(conn, user, call_id)
    _require_actor(call, user, "declined")
    return _finish_ring(conn, user, call, "declined", now)


def cancel(conn: Conn, user: User, call_id: UUID, now: datetime) -> Summary:
    """The caller withdraws a ringing call (repeating it is harmless)."""
    call = _participant_call(conn, user, call_id)
    _require_actor(call, user, "cancelled")
    return _finish_ring(conn, user, call, "cancelled", now)


def _finish_ring(conn: Conn, user: User, call: Call, to: str, now: datetime) -> Summary:
    if call.state == to or call.state == "missed":
        return summary(call)
    if call.state != "ringing":
        raise Conflict(f"The call is {call.state}", code="CALL_NOT_RINGING", state=call.state)
    ann = Announcements()
    if _ring_expired(call, now):
        call = _miss(conn, call, ann)
    else:
        call = _move(conn, call, to, ann, ended_at=now, ended_by=user.id, end_reason=to)
    ann.commit_with(conn)
    return summary(call)


def end(conn: Conn, user: User, call_id: UUID, now: datetime) -> Summary:
    """Either side hangs up: every started minute is settled first; idempotent (an ended call's summary)."""
    call = _participant_call(conn, user, call_id)
    if call.state == "ringing":
        return _finish_ring(conn, user, call, "cancelled" if user.id == call.caller_id else "declined", now)
    if call.state != "active":
        return summary(call)
    ann = Announcements()
    call = billing.advance(conn, [call], now, ann).calls[call.id]
    if call.state == "active":
        call = _move(conn, call, "ended", ann, ended_at=now, ended_by=user.id, end_reason="hangup")
    ann.commit_with(conn)
    return summary(call)


def heartbeat(conn: Conn, user: User, call_id: UUID, now: datetime) -> Heartbeat:
    """A side says it is still there; a call whose side had already timed out ends instead (and says so)."""
    call = _participant_call(conn, user, call_id)
    ann = Announcements()
    if _ring_expired(call, now):
        call = _miss(conn, call, ann)
    elif call.state == "active" and billing.present_until(call) <= now:
        # Judged on the stamps as they were: a side back after a timeout finds its call ended, not revived.
        call = billing.advance(conn, [call], now, ann).calls[call.id]
    if call.is_live:
        seen = "fan_last_seen_at" if user.id == call.fan_id else "creator_last_seen_at"
        call = queries.update(conn, call.id, {seen: now})
    ann.commit_with(conn)
    return Heartbeat(
        callId=call.id, state=call.state, endReason=call.end_reason, billing=billing.billing_of(call, now)
    )


def summary(call: Call) -> Summary:
    """The settled call, as /end answers."""
    return Summary(
        callId=call.id,
        state=call.state,
        durationSeconds=call.duration_seconds,
        durationMinutes=call.last_billed_minute,
        totalCost=call.total_cost,
        endedBy=call.ended_by,
        endReason=call.end_reason,
    )


def view(call: Call, me: UUID, now: datetime, other: Party | None = None) -> CallView:
    """A call as one participant sees it (a ring past its deadline shows as missed before the sweep writes it)."""
    state = "missed" if _ring_expired(call, now) else call.state
    return CallView(
        callId=call.id,
        callType=call.call_type,
        state=state,
        channel=call.channel,
        fanId=call.fan_id,
        creatorId=call.creator_id,
        initiatedBy=call.initiated_by,
        direction="outgoing" if call.caller_id == me else "incoming",
        ratePerMinute=call.rate_per_minute,
        message=call.message,
        createdAt=call.created_at,
        expiresAt=call.ring_expires_at,
        connectedAt=call.connected_at,
        endedAt=call.ended_at,
        durationSeconds=call.duration_seconds,
        durationMinutes=call.last_billed_minute,
        totalCost=call.total_cost,
        endReason="no_answer" if state == "missed" and call.end_reason is None else call.end_reason,
        endedBy=call.ended_by,
        otherParty=other,
    )


def expire_stale_rings(
    conn: Conn, now: datetime, *, party_ids: list[UUID] | None = None, ann: Announcements | None = None
) -> int:
    """Ringing calls unanswered for 45 s become missed (cleanup cron, and before its parties take a new call)."""
    rows = conn.execute(
        f"""UPDATE call_sessions SET state = 'missed', end_reason = 'no_answer', ended_at = ring_expires_at
            WHERE id IN (SELECT id FROM call_sessions
                         WHERE state = 'ringing' AND ring_expires_at <= %(now)s
                           AND (%(parties)s::uuid[] IS NULL OR fan_id = ANY(%(parties)s::uuid[])
                                OR creator_id = ANY(%(parties)s::uuid[]))
                         ORDER BY ring_expires_at LIMIT 5000 FOR UPDATE SKIP LOCKED)
            RETURNING {queries.COLUMNS}""",  # noqa: S608
        {"now": now, "parties": party_ids},
    ).fetchall()
    own = ann is None
    announcements = ann if ann is not None else Announcements()
    for row in rows:
        announcements.state(Call.model_validate(row))
    if own:
        announcements.commit_with(conn)
    return len(rows)
