"""GET /api/sessions/scheduled: my booked calls for the calendar."""

from lib import calls
from lib.auth import CurrentUser
from lib.calls import sessions
from lib.calls.session_models import SessionList
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/sessions/scheduled")
def scheduled_sessions(user: CurrentUser, conn: DbConn) -> SessionList:
    """{sessions: [{id, type: "video-call"|"voice-call", title, scheduled_time, duration, status, tokens, ...}]}."""
    return sessions.scheduled(conn, user, calls.utcnow())
