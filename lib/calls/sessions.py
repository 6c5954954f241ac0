"""Calls under the frontend's `/sessions/*` paths: the same calls (`machine`) and bookings (`scheduling`).

An instant request is a call: its id is the call's, and answering it is answering the call (minute 1 charged on
accept, exactly as /calls/{id}/accept). A request with a date and time is a booking until its time comes, then a
call. `GET /sessions/requests` lists both, with one status vocabulary (session_models.Status).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg.rows import DictRow

from lib.calls import machine, queries, scheduling, slots
from lib.calls.models import CallRinging, CallType, JoinInfo
from lib.calls.session_models import (
    STATUSES,
    CreateInviteIn,
    InviteCreated,
    RequestAction,
    RequestItem,
    RequestList,
    RescheduleIn,
    SessionItem,
    SessionList,
    SessionRequested,
    SessionRequestIn,
)
from lib.db import Conn
from lib.errors import BadRequest, Conflict, NotFound, Unprocessable
from lib.users import User

MAX_LIMIT = 100


def _rate(creator: Mapping[str, Any], call_type: CallType) -> int:
    rate = creator["video_price"] if call_type == "video" else creator["voice_price"]
    if not rate or rate <= 0:
        raise BadRequest(f"This creator does not take {call_type} calls", code="CALL_TYPE_UNAVAILABLE")
    return int(rate)


def _check_price(shown: int | None, rate: int) -> None:
    """409 PRICE_CHANGED when the fan was shown less than the creator charges now (never charge more than shown)."""
    if shown is not None and shown < rate:
        raise Conflict(
            "The creator's price changed; confirm the new one", code="PRICE_CHANGED", ratePerMinute=rate
        )


def _ringing_to(
    conn: Conn, fan: User, creator_id: UUID, call_type: CallType, now: datetime
) -> CallRinging | None:
    """The ringing call this fan already placed to this creator (a retried request answers it, not 409)."""
    call = queries.live_call_of(conn, fan.id)
    if (
        call is None
        or call.state != "ringing"
        or call.caller_id != fan.id
        or call.creator_id != creator_id
        or call.call_type != call_type
        or now >= call.ring_expires_at
    ):
        return None
    return CallRinging(
        callId=call.id,
        channel=call.channel,
        state=call.state,
        callType=call.call_type,
        ratePerMinute=call.rate_per_minute,
        expiresAt=call.ring_expires_at,
    )


def request(conn: Conn, fan: User, body: SessionRequestIn, now: datetime) -> SessionRequested:
    """POST /sessions/request: ring the creator now, or book the date and time given."""
    if body.creatorId == fan.id:
        raise BadRequest("You cannot call yourself", code="CANNOT_CALL_SELF")
    creator = machine.callable_creator(conn, body.creatorId)
    rate = _rate(creator, body.serviceType)
    _check_price(body.price, rate)
    if body.is_scheduled:
        when = slots.resolve(body, now)
        machine.require_one_minute(conn, fan.id, rate)
        me = queries.party(conn, fan.id)
        assert me is not None
        booked = scheduling.book(
            conn,
            fan,
            fan=me,
            creator=creator,
            request_type="session_request",
            call_type=body.serviceType,
            when=when,
            duration_minutes=body.duration_minutes,
            rate=rate,
            message=body.message,
        )
        return _requested(item(conn, fan, booked, now), None)
    ringing = _ringing_to(conn, fan, body.creatorId, body.serviceType, now) or machine.request_call(
        conn, fan, body.creatorId, body.serviceType, now
    )
    return _requested(item(conn, fan, ringing.callId, now), ringing)


def _requested(it: RequestItem, ringing: CallRinging | None) -> SessionRequested:
    return SessionRequested(
        success=True,
        sessionId=it.id,
        requestId=it.id,
        scheduled=ringing is None,
        status=it.status,
        callId=ringing.callId if ringing else None,
        channel=ringing.channel if ringing else None,
        state=ringing.state if ringing else None,
        callType=it.call_type,
        ratePerMinute=it.rate_per_min,
        expiresAt=it.expires_at,
        scheduledAt=it.scheduled_at,
        request=it,
    )


def create_invite(conn: Conn, user: User, body: CreateInviteIn, now: datetime) -> InviteCreated:
    """POST /sessions/create-invite: book (or, without a date, ring now) a call with `fan_id`, whichever side."""
    if body.fan_id == user.id:
        raise BadRequest("You cannot call yourself", code="CANNOT_CALL_SELF")
    other = machine.callable_user(conn, body.fan_id)
    me = queries.party(conn, user.id)
    assert me is not None
    if body.creator_username:
        named = body.creator_username.strip().lstrip("@").lower()
        creator_row = other if other["username"] == named else me if me["username"] == named else None
        if creator_row is None:
            raise NotFound("creator_username names neither party", code="CREATOR_NOT_FOUND")
    elif other["is_creator"]:
        creator_row = other  # a fan (or a creator) asking a creator: CallRequestModal on a creator's card
    elif me["is_creator"]:
        creator_row = me  # a creator inviting a fan
    else:
        raise NotFound("Creator not found", code="CREATOR_NOT_FOUND")
    creator = machine.callable_creator(conn, creator_row["id"])
    fan = other if creator["id"] == me["id"] else me
    rate = _rate(creator, body.type)
    if fan["id"] == user.id:
        _check_price(body.rate_per_min, rate)
    if body.is_scheduled:
        if fan["id"] == user.id:
            machine.require_one_minute(conn, user.id, rate)
        booked = scheduling.book(
            conn,
            user,
            fan=fan,
            creator=creator,
            request_type="session_invite",
            call_type=body.type,
            when=slots.resolve(body, now),
            duration_minutes=body.duration_minutes,
            rate=rate,
            message=body.message,
        )
        it = item(conn, user, booked, now)
    elif fan["id"] == user.id:
        it = item(conn, user, machine.request_call(conn, user, creator["id"], body.type, now).callId, now)
    else:
        placed = machine.initiate_call(conn, user, fan["id"], body.type, body.message, now)
        it = item(conn, user, placed.callId, now)
    return InviteCreated(success=True, invite=it, request=it)


# --- answering: a booking not yet rung moves as a booking; anything else is its call --------------------------


def _action(
    conn: Conn, user: User, request_id: UUID, now: datetime, join: JoinInfo | None = None
) -> RequestAction:
    it = item(conn, user, request_id, now)
    return RequestAction(success=True, request=it, session=it, call=join)


def accept(conn: Conn, user: User, request_id: UUID, now: datetime) -> RequestAction:
    """Accept a booking (it will ring at its time) or answer a ringing call (minute 1 charged; `call` to join)."""
    booking = scheduling.lock(conn, request_id)
    if booking is not None and booking.call_id is None:
        scheduling.accept(conn, user, booking, now)
        return _action(conn, user, request_id, now)
    call_id = booking.call_id if booking is not None and booking.call_id else request_id
    call = queries.lock(conn, call_id)
    if call is not None and call.state == "active" and call.callee_id == user.id:
        return _action(conn, user, request_id, now)  # answered already (a retry): nothing is charged twice
    return _action(conn, user, request_id, now, machine.accept(conn, user, call_id, now))


def decline(conn: Conn, user: User, request_id: UUID, reason: str | None, now: datetime) -> RequestAction:
    """Decline a booking, or a ringing call (the person asked only)."""
    booking = scheduling.lock(conn, request_id)
    if booking is not None and booking.call_id is None:
        scheduling.decline(conn, user, booking, reason)
    else:
        machine.decline(conn, user, booking.call_id if booking and booking.call_id else request_id, now)
    return _action(conn, user, request_id, now)


def cancel(conn: Conn, user: User, request_id: UUID, reason: str | None, now: datetime) -> RequestAction:
    """Either side calls it off: a booking is cancelled; a ringing call withdrawn or refused; a live one hung up."""
    booking = scheduling.lock(conn, request_id)
    if booking is not None and booking.call_id is None:
        scheduling.cancel(conn, user, booking, reason)
    else:
        machine.end(conn, user, booking.call_id if booking and booking.call_id else request_id, now)
    return _action(conn, user, request_id, now)


def reschedule(conn: Conn, user: User, request_id: UUID, body: RescheduleIn, now: datetime) -> RequestAction:
    """Move a booking that has not rung yet; an instant call cannot be moved (cancel it and book a time)."""
    booking = scheduling.lock(conn, request_id)
    if booking is None or not booking.has_party(user.id):
        item(conn, user, request_id, now)  # 404 unless it is a call of mine
        raise Conflict("Only a scheduled request can be rescheduled", code="REQUEST_NOT_SCHEDULED")
    if booking.call_id is not None:
        raise Conflict("This call is already ringing or over", code="REQUEST_NOT_OPEN")
    scheduling.reschedule(conn, user, booking, slots.resolve(body.slot(), now), body.message, now)
    return _action(conn, user, request_id, now)


# --- reads ------------------------------------------------------------------------------------------------------

# My bookings (with their call once rung) and my calls that no booking placed, with one derived status.
_MINE = """
WITH mine AS (
    SELECT r.id, r.request_type, r.fan_id, r.creator_id, r.requested_by, r.call_type, r.created_at,
           r.scheduled_at, r.scheduled_date, r.scheduled_time, r.time_zone, r.duration_minutes,
           r.rate_per_minute, r.message, r.reason, r.accepted_at, r.status AS booking_status,
           c.id AS call_id, c.state AS call_state, c.channel, c.ring_expires_at, c.last_billed_minute
    FROM call_requests r LEFT JOIN call_sessions c ON c.id = r.call_id
    WHERE r.fan_id = %(me)s OR r.creator_id = %(me)s
    UNION ALL
    SELECT c.id, 'call_request', c.fan_id, c.creator_id, c.initiated_by, c.call_type, c.created_at,
           NULL, NULL, NULL, NULL, NULL,
           c.rate_per_minute, c.message, NULL, c.connected_at, NULL,
           c.id, c.state, c.channel, c.ring_expires_at, c.last_billed_minute
    FROM call_sessions c
    WHERE (c.fan_id = %(me)s OR c.creator_id = %(me)s)
      AND NOT EXISTS (SELECT 1 FROM call_requests r WHERE r.call_id = c.id)
), shown AS (
    SELECT m.*,
           CASE WHEN m.call_state IS NULL THEN m.booking_status
                WHEN m.call_state = 'ringing' AND m.ring_expires_at <= %(now)s THEN 'missed'
                WHEN m.call_state = 'ringing' AND m.booking_status IS NULL THEN 'pending'
                WHEN m.call_state IN ('ringing', 'active') THEN 'accepted'
                WHEN m.call_state = 'ended' THEN 'completed'
                ELSE m.call_state END AS status
    FROM mine m
)
SELECT s.*, f.username AS fan_username, f.display_name AS fan_display_name, f.profile_pic_url AS fan_pic,
       cr.username AS creator_username, cr.display_name AS creator_display_name, cr.profile_pic_url AS creator_pic,
       count(*) OVER () AS total
FROM shown s JOIN users f ON f.id = s.fan_id JOIN users cr ON cr.id = s.creator_id
"""


def _request_item(row: DictRow, me: UUID) -> RequestItem:
    rate = int(row["rate_per_minute"])
    duration = (
        row["duration_minutes"] if row["scheduled_at"] is not None else (row["last_billed_minute"] or None)
    )
    responder = row["creator_id"] if row["requested_by"] == row["fan_id"] else row["fan_id"]
    return RequestItem(
        id=row["id"],
        request_type=row["request_type"],
        status=row["status"],
        type=row["call_type"],
        call_type=row["call_type"],
        direction="outgoing" if row["requested_by"] == me else "incoming",
        can_respond=row["status"] == "pending" and responder == me,
        fan_id=row["fan_id"],
        fan_username=row["fan_username"],
        fan_name=row["fan_display_name"] or row["fan_username"],
        fan_profile_pic=row["fan_pic"],
        creator_id=row["creator_id"],
        creator_username=row["creator_username"],
        creator_name=row["creator_display_name"] or row["creator_username"],
        creator_profile_pic=row["creator_pic"],
        duration_minutes=duration,
        estimated_duration=duration,
        price_per_minute=rate,
        rate_per_min=rate,
        offering_tokens=rate * (duration or 1),
        scheduled_date=row["scheduled_date"].isoformat() if row["scheduled_date"] else None,
        scheduled_time=row["scheduled_time"].strftime("%H:%M") if row["scheduled_time"] else None,
        scheduled_at=row["scheduled_at"],
        time_zone=row["time_zone"],
        message=row["message"],
        reason=row["reason"],
        urgency="normal",
        created_at=row["created_at"],
        expires_at=row["scheduled_at"] if row["call_state"] is None else row["ring_expires_at"],
        accepted_at=row["accepted_at"],
        call_id=row["call_id"],
        call_state=row["call_state"],
        channel=row["channel"],
    )


def item(conn: Conn, user: User, request_id: UUID, now: datetime) -> RequestItem:
    """One of my requests (a booking or a call), or 404."""
    row = conn.execute(
        _MINE + " WHERE s.id = %(id)s", {"me": user.id, "now": now, "id": request_id}
    ).fetchone()
    if row is None:
        raise NotFound("Request not found", code="REQUEST_NOT_FOUND")
    return _request_item(row, user.id)


def list_requests(
    conn: Conn, user: User, status: str | None, now: datetime, *, limit: int, offset: int
) -> RequestList:
    """GET /sessions/requests?status=pending|accepted|declined|cancelled|expired|missed|completed|all."""
    wanted = None if status in (None, "", "all") else status
    if wanted is not None and wanted not in STATUSES:
        raise Unprocessable(
            "Unknown status",
            code="VALIDATION_ERROR",
            errors=[{"field": "status", "message": f"One of all, {', '.join(STATUSES)}"}],
        )
    limit, offset = max(1, min(limit, MAX_LIMIT)), max(0, offset)
    rows = conn.execute(
        _MINE
        + """ WHERE (%(status)s::text IS NULL OR s.status = %(status)s)
              ORDER BY s.created_at DESC, s.id DESC LIMIT %(limit)s OFFSET %(offset)s""",
        {"me": user.id, "now": now, "status": wanted, "limit": limit, "offset": offset},
    ).fetchall()
    total = int(rows[0]["total"]) if rows else 0
    items = [_request_item(r, user.id) for r in rows]
    return RequestList(
        requests=items, total=total, limit=limit, offset=offset, hasMore=offset + len(items) < total
    )


def _session_item(row: DictRow, me: UUID, *, calendar: bool) -> SessionItem:
    it = _request_item(row, me)
    assert it.scheduled_at is not None and it.duration_minutes is not None
    mine_is_fan = it.fan_id == me
    other_name = it.creator_name if mine_is_fan else it.fan_name
    return SessionItem(
        id=it.id,
        request_id=it.id,
        type=f"{it.call_type}-call" if calendar else it.call_type,
        call_type=it.call_type,
        title=f"{'Video' if it.call_type == 'video' else 'Voice'} call with {other_name}",
        status=it.status,
        direction=it.direction,
        fan_id=it.fan_id,
        fan_name=it.fan_name,
        fan_username=it.fan_username,
        creator_id=it.creator_id,
        creator_name=it.creator_name,
        creator_username=it.creator_username,
        username=it.creator_username if mine_is_fan else it.fan_username,
        scheduled_at=it.scheduled_at,
        scheduled_time=it.scheduled_at,
        scheduled_date=it.scheduled_date or it.scheduled_at.date().isoformat(),
        date=it.scheduled_at,
        time=it.scheduled_at,
        duration=it.duration_minutes,
        duration_minutes=it.duration_minutes,
        tokens=it.offering_tokens,
        rate_per_min=it.rate_per_min,
        participants=[other_name],
        call_id=it.call_id,
    )


def _sessions(
    conn: Conn,
    user: User,
    now: datetime,
    *,
    statuses: tuple[str, ...],
    since: datetime,
    limit: int,
    calendar: bool,
) -> SessionList:
    rows = conn.execute(
        _MINE
        + """ WHERE s.scheduled_at IS NOT NULL AND s.scheduled_at >= %(since)s AND s.status = ANY(%(statuses)s)
              ORDER BY s.scheduled_at, s.id LIMIT %(limit)s""",
        {"me": user.id, "now": now, "since": since, "statuses": list(statuses), "limit": limit},
    ).fetchall()
    return SessionList(sessions=[_session_item(r, user.id, calendar=calendar) for r in rows])


def scheduled(conn: Conn, user: User, now: datetime) -> SessionList:
    """GET /sessions/scheduled: my booked calls for the calendar (asked, accepted, done), the last 30 days on."""
    return _sessions(
        conn,
        user,
        now,
        statuses=("pending", "accepted", "completed", "missed"),
        since=now - timedelta(days=30),
        limit=200,
        calendar=True,
    )


def upcoming(conn: Conn, user: User, now: datetime) -> SessionList:
    """GET /sessions/upcoming: my accepted booked calls still to come (or ringing now), soonest first."""
    return _sessions(
        conn, user, now, statuses=("accepted",), since=now - scheduling.RING_GRACE, limit=20, calendar=False
    )
