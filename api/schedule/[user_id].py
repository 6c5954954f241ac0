"""GET /api/schedule/{user_id}: my booked calls as events with the schedule page's stats (self or admin)."""

from uuid import UUID

from lib import calls, schedule
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/schedule/{user_id}")
def user_schedule(user_id: UUID, user: CurrentUser, conn: DbConn) -> schedule.Calendar:
    """{events: [{id, type, title, date, time, duration, status, fan_username}], stats: {totalEvents, upcomingCalls,
    completedCalls, revenue}}."""
    return schedule.schedule(conn, user, user_id, calls.utcnow())
