"""Calls booked for a time: the booking's life until it rings, then the call state machine takes over.

    pending --accept (the party asked)--> accepted --its time comes--> rung (a ringing call; `call_id`)
       |--decline (the party asked)--> declined
       |--cancel (either party)------> cancelled   (also from accepted)
       '--its time passes unanswered--> expired     (also accepted, when it could not ring within RING_GRACE)

Rescheduling (either party, pending or accepted) moves the time and bumps `version`; an accepted booking stays
accepted and rings at the new time only: the ring job names the version it was published for, and a message
for an older version does nothing. The ring places the call through `machine.place_call` (the same rules as
/calls/request: one live call per user, one minute's tokens); billing is the call's, unchanged. A ring that
finds a side busy retries every RETRY_S until RING_GRACE; the cleanup cron rings anything a lost message missed.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lib import db, realtime
from lib.calls import machine, queries
from lib.calls.models import CallType
from lib.calls.session_models import RingResult
from lib.calls.slots import When
from lib.db import Conn
from lib.errors import AppError, Conflict, Forbidden, NotFound, Unprocessable
from lib.users import User

RING_PATH = "/api/jobs/ring-scheduled-call"
RING_GRACE = timedelta(minutes=15)  # how late a booked call may still ring (a side busy, a lost message)
RETRY_S = 30  # a ring that found a side busy tries again this much later
MAX_DELAY_S = 7 * 24 * 3600 - 60  # QStash's longest delay (plan-dependent); longer waits hop
OPEN = ("pending", "accepted")

_COLUMNS = (
    "id, fan_id, creator_id, requested_by, request_type, call_type, status, scheduled_at, scheduled_date,"
    " scheduled_time, time_zone, duration_minutes, rate_per_minute, message, reason, version, call_id,"
    " created_at, updated_at, accepted_at, closed_by"
)


class Booking(BaseModel):
    """One row of call_requests."""

    id: UUID
    fan_id: UUID
    creator_id: UUID
    requested_by: UUID
    request_type: Literal["session_request", "session_invite"]
    call_type: CallType
    status: Literal["pending", "accepted", "declined", "cancelled", "expired", "rung"]
    scheduled_at: datetime
    scheduled_date: date
    scheduled_time: time
    time_zone: str
    duration_minutes: int
    rate_per_minute: int
    message: str | None
    reason: str | None
    version: int
    call_id: UUID | None
    created_at: datetime
    updated_at: datetime
    accepted_at: datetime | None
    closed_by: UUID | None

    @property
    def responder_id(self) -> UUID:
        """Who accepts or declines: the party who did not ask."""
        return self.creator_id if self.requested_by == self.fan_id else self.fan_id

    def has_party(self, user_id: UUID) -> bool:
        """Whether the user is one of the two parties."""
        return user_id in (self.fan_id, self.creator_id)


# --- reads and writes -------------------------------------------------------------------------------------------


def lock(conn: Conn, request_id: UUID) -> Booking | None:
    """One booking, row-locked until the transaction ends (every change goes through this)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM call_requests WHERE id = %(id)s FOR UPDATE",  # noqa: S608
        {"id": request_id},
    ).fetchone()
    return Booking.model_validate(row) if row else None


def _update(conn: Conn, booking: Booking, **changes: Any) -> Booking:
    columns = ", ".join(f"{name} = %({name})s" for name in changes)
    row = conn.execute(
        f"UPDATE call_requests SET {columns}, updated_at = now() WHERE id = %(_id)s RETURNING {_COLUMNS}",  # noqa: S608
        {**changes, "_id": booking.id},
    ).fetchone()
    assert row is not None, f"booking {booking.id} vanished under its own lock"
    return Booking.model_validate(row)


@dataclass
class _Notes:
    """Events and ring jobs collected while changing bookings, written to the outbox / published after commit."""

    events: list[tuple[str, str, Mapping[str, Any]]] = field(default_factory=list)
    jobs: list[tuple[dict[str, Any], int, str]] = field(default_factory=list)  # (body, delay, dedup id)

    def updated(self, booking: Booking, by: UUID | None) -> None:
        shown = "pending" if booking.status == "rung" else booking.status
        payload = realtime.session_updated(
            request_id=booking.id,
            status=shown,
            request_type=booking.request_type,
            call_type=booking.call_type,
            fan_id=booking.fan_id,
            creator_id=booking.creator_id,
            scheduled_at=booking.scheduled_at,
            by_user_id=by,
        )
        for user_id in (booking.fan_id, booking.creator_id):
            self.events.append((realtime.user_channel(user_id), realtime.Event.SESSION_UPDATED, payload))

    def ring_at(self, booking: Booking, at: datetime, now: datetime, *, tag: str = "") -> None:
        """Publish the ring job for `booking`'s current version, due at `at` (long waits hop, QStash's cap)."""
        delay = max(0, math.ceil((at - now).total_seconds()))
        hop = delay > MAX_DELAY_S
        delay = min(delay, MAX_DELAY_S)
        dedup = f"ring:{booking.id}:v{booking.version}" + tag
        if hop:
            dedup += f":hop:{int(now.timestamp()) + delay}"
        self.jobs.append(({"requestId": str(booking.id), "version": booking.version}, delay, dedup))

    def commit_with(self, conn: Conn) -> None:
        realtime.publish_many(conn, self.events)
        if self.jobs:
            jobs = list(self.jobs)
            db.after_commit(conn, lambda: _publish(jobs))


def _publish(ring_jobs: list[tuple[dict[str, Any], int, str]]) -> None:
    from lib import jobs  # the QStash SDK loads only in functions that schedule rings (cold starts)

    for body, delay, dedup in ring_jobs:
        if jobs.publish(RING_PATH, body, delay_s=delay, dedup_id=dedup) is None:
            break  # QStash unreachable: the cleanup cron rings these instead


# --- the booking's moves ---------------------------------------------------------------------------------------


def book(
    conn: Conn,
    requester: User,
    *,
    fan: Mapping[str, Any],
    creator: Mapping[str, Any],
    request_type: Literal["session_request", "session_invite"],
    call_type: CallType,
    when: When,
    duration_minutes: int,
    rate: int,
    message: str | None,
) -> UUID:
    """A new pending booking (a retry of the same one, same parties and time, gets the first back)."""
    row = conn.execute(
        f"""INSERT INTO call_requests (id, fan_id, creator_id, requested_by, request_type, call_type,
                                       scheduled_at, scheduled_date, scheduled_time, time_zone, duration_minutes,
                                       rate_per_minute, message)
            VALUES (%(id)s, %(fan)s, %(creator)s, %(by)s, %(kind)s, %(type)s, %(at)s, %(d)s, %(t)s, %(tz)s,
                    %(dur)s, %(rate)s, %(message)s)
            ON CONFLICT (requested_by, fan_id, creator_id, scheduled_at) WHERE status IN ('pending', 'accepted')
            DO NOTHING
            RETURNING {_COLUMNS}""",  # noqa: S608
        {
            "id": uuid.uuid4(),
            "fan": fan["id"],
            "creator": creator["id"],
            "by": requester.id,
            "kind": request_type,
            "type": call_type,
            "at": when.at,
            "d": when.local_date,
            "t": when.local_time,
            "tz": when.time_zone,
            "dur": duration_minutes,
            "rate": rate,
            "message": message,
        },
    ).fetchone()
    if row is None:  # the same booking is open already: answer it again
        found = conn.execute(
            """SELECT id FROM call_requests WHERE requested_by = %(by)s AND fan_id = %(fan)s
                 AND creator_id = %(creator)s AND scheduled_at = %(at)s AND status IN ('pending', 'accepted')""",
            {"by": requester.id, "fan": fan["id"], "creator": creator["id"], "at": when.at},
        ).fetchone()
        assert found is not None
        return UUID(str(found["id"]))
    booking = Booking.model_validate(row)
    notes = _Notes()
    notes.updated(booking, requester.id)
    notes.commit_with(conn)
    return booking.id


def _mine(booking: Booking, user: User) -> None:
    if not booking.has_party(user.id):
        raise NotFound("Request not found", code="REQUEST_NOT_FOUND")


def _past_due(booking: Booking, now: datetime) -> bool:
    """A pending booking whose time came unanswered (the sweep writes it as expired)."""
    return booking.status == "pending" and now >= booking.scheduled_at


def accept(conn: Conn, user: User, booking: Booking, now: datetime) -> Booking:
    """The party asked accepts: the ring job is published for the booked time (accepting again is harmless)."""
    _mine(booking, user)
    if user.id != booking.responder_id:
        raise Forbidden("Only the person asked can accept; the requester can cancel", code="NOT_CALLEE")
    if booking.status == "accepted":
        return booking
    if booking.status != "pending":
        raise Conflict(
            f"The request is {booking.status}", code="REQUEST_NOT_PENDING", status_now=booking.status
        )
    if _past_due(booking, now):
        raise Conflict("The requested time has passed; suggest a new one", code="REQUEST_EXPIRED")
    booking = _update(conn, booking, status="accepted", accepted_at=now)
    notes = _Notes()
    notes.updated(booking, user.id)
    notes.ring_at(booking, booking.scheduled_at, now)
    notes.commit_with(conn)
    return booking


def decline(conn: Conn, user: User, booking: Booking, reason: str | None) -> Booking:
    """The party asked refuses a pending booking (repeating it is harmless)."""
    _mine(booking, user)
    if user.id != booking.responder_id:
        raise Forbidden("Only the person asked can decline; the requester can cancel", code="NOT_CALLEE")
    if booking.status == "declined":
        return booking
    if booking.status != "pending":
        raise Conflict(
            f"The request is {booking.status}", code="REQUEST_NOT_PENDING", status_now=booking.status
        )
    booking = _update(conn, booking, status="declined", reason=reason, closed_by=user.id)
    notes = _Notes()
    notes.updated(booking, user.id)
    notes.commit_with(conn)
    return booking


def cancel(conn: Conn, user: User, booking: Booking, reason: str | None) -> Booking:
    """Either party calls off a pending or accepted booking; its ring job finds it cancelled (harmless to repeat)."""
    _mine(booking, user)
    if booking.status in ("cancelled", "declined", "expired"):
        return booking
    if booking.status not in OPEN:
        raise Conflict(f"The request is {booking.status}", code="REQUEST_NOT_OPEN", status_now=booking.status)
    booking = _update(
        conn, booking, status="cancelled", reason=reason, closed_by=user.id, version=booking.version + 1
    )
    notes = _Notes()
    notes.updated(booking, user.id)
    notes.commit_with(conn)
    return booking


def reschedule(
    conn: Conn, user: User, booking: Booking, when: When, message: str | None, now: datetime
) -> Booking:
    """Either party moves a pending or accepted booking; an accepted one rings at the new time only."""
    _mine(booking, user)
    if booking.status not in OPEN or _past_due(booking, now):
        raise Conflict("Only a pending or accepted request can be rescheduled", code="REQUEST_NOT_OPEN")
    booking = _update(
        conn,
        booking,
        scheduled_at=when.at,
        scheduled_date=when.local_date,
        scheduled_time=when.local_time,
        time_zone=when.time_zone,
        version=booking.version + 1,
        message=message if message is not None else booking.message,
    )
    notes = _Notes()
    notes.updated(booking, user.id)
    if booking.status == "accepted":
        notes.ring_at(booking, booking.scheduled_at, now)
    notes.commit_with(conn)
    return booking


# --- ringing ---------------------------------------------------------------------------------------------------


def _ring(conn: Conn, booking: Booking, now: datetime, notes: _Notes) -> RingResult:
    """Place the booked call now (the booking is locked and accepted, its time has come)."""
    fan, creator = queries.party(conn, booking.fan_id), queries.party(conn, booking.creator_id)
    assert fan is not None and creator is not None
    try:
        with conn.transaction():  # a savepoint: a refused ring undoes only itself
            placed = machine.place_call(
                conn,
                fan,
                creator,
                caller=booking.requested_by,
                call_type=booking.call_type,
                message=booking.message,
                rate=booking.rate_per_minute,
                now=now,
            )
    except Conflict:
        if now < booking.scheduled_at + RING_GRACE:
            notes.ring_at(
                booking, now + timedelta(seconds=RETRY_S), now, tag=f":retry:{int(now.timestamp())}"
            )
            return RingResult(requestId=booking.id, version=booking.version, status="busy")
        return _expire(conn, booking, "busy", notes)
    except AppError as exc:  # the fan can no longer pay a minute, the creator stopped taking this call type
        return _expire(conn, booking, exc.code.lower(), notes)
    booking = _update(conn, booking, status="rung", call_id=placed.callId)
    payload = realtime.session_due(
        request_id=booking.id,
        call_id=placed.callId,
        channel=placed.channel,
        call_type=placed.callType,
        fan_id=booking.fan_id,
        creator_id=booking.creator_id,
        rate=placed.ratePerMinute,
        scheduled_at=booking.scheduled_at,
    )
    for user_id in (booking.fan_id, booking.creator_id):
        notes.events.append((realtime.user_channel(user_id), realtime.Event.SESSION_DUE, payload))
    return RingResult(requestId=booking.id, version=booking.version, status="rung", callId=placed.callId)


def _expire(conn: Conn, booking: Booking, reason: str, notes: _Notes) -> RingResult:
    booking = _update(conn, booking, status="expired", reason=reason[:500])
    notes.updated(booking, None)
    return RingResult(requestId=booking.id, version=booking.version, status="expired")


def ring_due(conn: Conn, request_id: UUID, version: int, now: datetime) -> RingResult:
    """The ring job: ring the booking if it is still accepted at this version and its time has come."""
    booking = lock(conn, request_id)
    if booking is None:
        return RingResult(requestId=request_id, version=version, status="not_found")
    if booking.version != version or booking.status != "accepted":
        return RingResult(requestId=request_id, version=version, status="stale")
    notes = _Notes()
    if booking.scheduled_at > now + timedelta(seconds=1):
        # Early: a hop of a wait longer than QStash's cap (or a clock jump). Wait again for the rest.
        notes.ring_at(booking, booking.scheduled_at, now)
        result = RingResult(requestId=request_id, version=version, status="not_due")
    else:
        result = _ring(conn, booking, now, notes)
    notes.commit_with(conn)
    return result


class RingJob(BaseModel):
    """The body of a /jobs/ring-scheduled-call message."""

    model_config = ConfigDict(strict=True)

    requestId: UUID = Field(strict=False)
    version: int = Field(ge=1)


def run_ring_job(conn: Conn, body: dict[str, Any], message_id: str, now: datetime) -> RingResult:
    """A verified QStash delivery: claim its message id once, then ring the booking it names."""
    from lib import jobs  # the QStash SDK loads only where jobs run

    try:
        job = RingJob.model_validate(body)
    except ValidationError as exc:
        raise Unprocessable("Expected {requestId, version}", code="INVALID_JOB_BODY") from exc
    if not jobs.claim_delivery(conn, message_id):
        return RingResult(requestId=job.requestId, version=job.version, status="duplicate_delivery")
    return ring_due(conn, job.requestId, job.version, now)


class SweepResult(BaseModel):
    """What the cleanup cron's scheduled-call step did."""

    rung: int
    busy: int
    expired: int


def sweep(conn: Conn, now: datetime, *, limit: int = 200) -> SweepResult:
    """Ring accepted bookings whose time came (a lost message), expire pending ones whose time passed unanswered."""
    notes = _Notes()
    stale = conn.execute(
        f"""UPDATE call_requests SET status = 'expired', reason = 'not_answered_in_time', updated_at = now()
            WHERE id IN (SELECT id FROM call_requests WHERE status = 'pending' AND scheduled_at <= %(now)s
                         ORDER BY scheduled_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
            RETURNING {_COLUMNS}""",  # noqa: S608
        {"now": now, "limit": limit},
    ).fetchall()
    for row in stale:
        notes.updated(Booking.model_validate(row), None)
    due = conn.execute(
        f"""SELECT {_COLUMNS} FROM call_requests WHERE status = 'accepted' AND scheduled_at <= %(now)s
            ORDER BY scheduled_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED""",  # noqa: S608
        {"now": now, "limit": limit},
    ).fetchall()
    counts = {"rung": 0, "busy": 0, "expired": len(stale)}
    for row in due:
        result = _ring(conn, Booking.model_validate(row), now, notes)
        counts[result.status] += 1
    notes.commit_with(conn)
    return SweepResult(**counts)
