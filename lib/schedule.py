"""The calendar (`/schedule/*`): a user's booked calls, classes and streams as events, and cancelling from it.

Nothing is stored here: events are read from what they stand for (bookings through lib.calls.sessions, classes
through lib.classes, the creator's own streams), so the calendar can never disagree with them. Deleting an event
cancels what it stands for through the same function as cancelling it directly (a booking: /sessions/requests/
{id}/cancel, with its session:updated event; a class: the host cancels it, a fan gives back an unpaid seat).
Dates and times are UTC (`scheduled_date` YYYY-MM-DD, `scheduled_time` HH:MM; `scheduled_at` is the instant).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from lib import classes
from lib.calls import sessions
from lib.calls.session_models import SessionItem
from lib.classes import queries as class_queries
from lib.classes.models import ClassOut
from lib.db import Conn
from lib.errors import Conflict, Forbidden, NotFound
from lib.users import User

EventType = Literal["video", "voice", "class", "stream"]
STREAM_DAYS = 30  # how far back a creator's own streams show
CANCEL_REASON = "Cancelled from the calendar"


class CalendarEvent(BaseModel):
    """One event: SchedulePage.js:129-140 (calendar-events) and :157-166 (schedule) read these."""

    id: str  # a booking's id; `class-{id}` for a class (`hosting-{id}` is accepted too); `stream-{id}`
    event_type: EventType
    type: EventType
    reference_type: Literal["call", "class", "stream"]
    reference_id: UUID
    title: str
    status: str
    scheduled_at: datetime
    scheduled_date: str
    scheduled_time: str
    date: str
    time: str
    duration_minutes: int
    duration: int
    fan_id: UUID | None
    fan_username: str | None
    creator_id: UUID
    creator_username: str | None
    hosting: bool  # I am the creator (host) of it
    tokens: int  # a call: rate x booked minutes; a class: its price


class Stats(BaseModel):
    """SchedulePage reads totalEvents, upcomingCalls, completedCalls, revenue (tokens)."""

    totalEvents: int
    upcomingCalls: int
    completedCalls: int
    revenue: int


class Calendar(BaseModel):
    """GET /schedule/calendar-events/{userId}, GET /schedule/{userId}."""

    success: bool
    events: list[CalendarEvent]
    stats: Stats


class Cancelled(BaseModel):
    """DELETE /schedule/calendar-events/{eventId}: the page reads only the status code."""

    success: bool
    message: str
    eventId: str
    status: str


def _when(at: datetime) -> dict[str, object]:
    utc = at.astimezone(UTC)
    day, clock = utc.strftime("%Y-%m-%d"), utc.strftime("%H:%M")
    return {
        "scheduled_at": at,
        "scheduled_date": day,
        "scheduled_time": clock,
        "date": day,
        "time": clock,
    }


def _call_event(s: SessionItem, me: UUID) -> CalendarEvent:
    return CalendarEvent(
        id=str(s.id),
        event_type=s.call_type,
        type=s.call_type,
        reference_type="call",
        reference_id=s.id,
        title=s.title,
        status=s.status,
        duration_minutes=s.duration,
        duration=s.duration,
        fan_id=s.fan_id,
        fan_username=s.fan_username,
        creator_id=s.creator_id,
        creator_username=s.creator_username,
        hosting=s.creator_id == me,
        tokens=s.tokens,
        **_when(s.scheduled_at),  # type: ignore[arg-type]
    )


def _class_event(c: ClassOut, me: UUID) -> CalendarEvent:
    return CalendarEvent(
        id=f"class-{c.id}",
        event_type="class",
        type="class",
        reference_type="class",
        reference_id=c.id,
        title=c.title,
        status=c.status,
        duration_minutes=c.duration,
        duration=c.duration,
        fan_id=None if c.creator_id == me else me,
        fan_username=None,
        creator_id=c.creator_id,
        creator_username=c.creator.username,
        hosting=c.creator_id == me,
        tokens=c.tokenPrice,
        **_when(c.startTime),  # type: ignore[arg-type]
    )


def _stream_events(conn: Conn, user: User, now: datetime) -> list[CalendarEvent]:
    """The creator's own streams of the last STREAM_DAYS (a class's stream shows as its class)."""
    rows = conn.execute(
        """SELECT s.id, s.title, s.status, s.started_at, s.ended_at
           FROM streams s
           WHERE s.creator_id = %(me)s AND s.started_at >= %(since)s
             AND NOT EXISTS (SELECT 1 FROM classes c WHERE c.stream_id = s.id)
           ORDER BY s.started_at LIMIT 100""",
        {"me": user.id, "since": now - timedelta(days=STREAM_DAYS)},
    ).fetchall()
    events = []
    for r in rows:
        minutes = max(1, int(((r["ended_at"] or now) - r["started_at"]).total_seconds() // 60))
        events.append(
            CalendarEvent(
                id=f"stream-{r['id']}",
                event_type="stream",
                type="stream",
                reference_type="stream",
                reference_id=r["id"],
                title=r["title"],
                status=r["status"],
                duration_minutes=minutes,
                duration=minutes,
                fan_id=None,
                fan_username=None,
                creator_id=user.id,
                creator_username=user.username,
                hosting=True,
                tokens=0,
                **_when(r["started_at"]),  # type: ignore[arg-type]
            )
        )
    return events


def _stats(conn: Conn, user: User, events: list[CalendarEvent], now: datetime) -> Stats:
    """Counts over the events; revenue: tokens charged for the calls and classes I hosted among them."""
    calls = [e for e in events if e.reference_type == "call"]
    hosted_classes = [e.reference_id for e in events if e.reference_type == "class" and e.hosting]
    row = conn.execute(
        """SELECT (SELECT coalesce(sum(c.total_cost), 0) FROM call_requests r JOIN call_sessions c ON c.id = r.call_id
                   WHERE r.id = ANY(%(calls)s) AND r.creator_id = %(me)s)
                + (SELECT coalesce(sum(e.paid_tokens), 0) FROM class_enrollments e
                   WHERE e.class_id = ANY(%(classes)s)) AS revenue""",
        {"calls": [e.reference_id for e in calls], "classes": hosted_classes, "me": user.id},
    ).fetchone()
    assert row is not None
    return Stats(
        totalEvents=len(events),
        upcomingCalls=sum(1 for e in calls if e.status in ("pending", "accepted") and e.scheduled_at >= now),
        completedCalls=sum(1 for e in calls if e.status == "completed"),
        revenue=int(row["revenue"]),
    )


def _own_or_admin(user: User, user_id: UUID) -> None:
    if user.id != user_id and not user.is_admin:
        raise Forbidden("You can only see your own calendar", code="FORBIDDEN")


def _as(conn: Conn, user: User, user_id: UUID) -> User:
    """The calendar's owner (an admin may look at anyone's)."""
    if user.id == user_id:
        return user
    from lib import users

    owner = users.get(conn, user_id)
    if owner is None:
        raise NotFound("User not found", code="USER_NOT_FOUND")
    return owner


def calendar_events(conn: Conn, user: User, user_id: UUID, now: datetime) -> Calendar:
    """Everything on the calendar: booked calls, classes hosted and joined, the creator's streams; by time."""
    _own_or_admin(user, user_id)
    owner = _as(conn, user, user_id)
    events = [_call_event(s, owner.id) for s in sessions.scheduled(conn, owner, now).sessions]
    seen: set[UUID] = set()
    for c in class_queries.hosting(conn, owner.id, now) + class_queries.enrolled(conn, owner.id, now):
        if c.id not in seen:
            seen.add(c.id)
            events.append(_class_event(c, owner.id))
    events += _stream_events(conn, owner, now)
    events.sort(key=lambda e: (e.scheduled_at, e.id))
    return Calendar(success=True, events=events, stats=_stats(conn, owner, events, now))


def schedule(conn: Conn, user: User, user_id: UUID, now: datetime) -> Calendar:
    """The booked calls only (SchedulePage adds classes from /classes/enrolled|hosting itself)."""
    _own_or_admin(user, user_id)
    owner = _as(conn, user, user_id)
    events = [_call_event(s, owner.id) for s in sessions.scheduled(conn, owner, now).sessions]
    return Calendar(success=True, events=events, stats=_stats(conn, owner, events, now))


def _parse(event_id: str) -> tuple[str | None, UUID]:
    """(`class`, `hosting`, `stream`, `call` or None for a bare id, the id)."""
    prefix, raw = None, event_id
    for name in ("class", "hosting", "stream", "call"):
        if event_id.startswith(name + "-"):
            prefix, raw = name, event_id.removeprefix(name + "-")
            break
    try:
        return prefix, UUID(raw)
    except ValueError:
        raise NotFound("Event not found", code="EVENT_NOT_FOUND") from None


def delete_event(conn: Conn, user: User, event_id: str, now: datetime) -> Cancelled:
    """Cancel what the event stands for, under the rules of cancelling it directly."""
    prefix, ref = _parse(event_id)
    if prefix == "stream":
        raise Conflict(
            "A stream on the calendar has happened; end a live one from its page",
            code="EVENT_NOT_CANCELLABLE",
        )
    if prefix in ("class", "hosting") or (prefix is None and _is_my_class(conn, user, ref, now)):
        c = class_queries.one(conn, ref, user.id, now)
        if c is None or (c.creator_id != user.id and not c.isEnrolled):
            raise NotFound("Event not found", code="EVENT_NOT_FOUND")
        if c.creator_id == user.id:
            classes.cancel(conn, user, ref)
            return Cancelled(success=True, message="Class cancelled", eventId=event_id, status="cancelled")
        classes.leave(conn, user, ref)
        return Cancelled(success=True, message="You left the class", eventId=event_id, status="left")
    done = sessions.cancel(conn, user, ref, CANCEL_REASON, now)
    return Cancelled(success=True, message="Event cancelled", eventId=event_id, status=done.request.status)


def _is_my_class(conn: Conn, user: User, class_id: UUID, now: datetime) -> bool:
    c = class_queries.one(conn, class_id, user.id, now)
    return c is not None and (c.creator_id == user.id or c.isEnrolled)
