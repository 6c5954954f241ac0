"""GET /api/schedule/calendar-events/{userId}: my calendar; DELETE /api/schedule/calendar-events/{eventId}."""

from typing import Annotated
from uuid import UUID

from fastapi import Path

from lib import calls, schedule
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/schedule/calendar-events/{ref}")
def calendar_events(ref: UUID, user: CurrentUser, conn: DbConn) -> schedule.Calendar:
    """{events: [{id, event_type, title, scheduled_date, scheduled_time, duration_minutes, status, fan_id,
    creator_id}], stats}: booked calls, classes and streams (self or admin)."""
    return schedule.calendar_events(conn, user, ref, calls.utcnow())


@app.delete("/api/schedule/calendar-events/{ref}")
def delete_calendar_event(
    ref: Annotated[str, Path(min_length=1, max_length=80)], user: CurrentUser, conn: DbConn
) -> schedule.Cancelled:
    """Cancel what the event stands for (a booking, a class I host, my unpaid seat in a class)."""
    return schedule.delete_event(conn, user, ref, calls.utcnow())
