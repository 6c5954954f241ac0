"""GET /api/sessions/upcoming: my accepted booked calls still to come, soonest first."""

from lib import calls
from lib.auth import CurrentUser
from lib.calls import sessions
from lib.calls.session_models import SessionList
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/sessions/upcoming")
def upcoming_sessions(user: CurrentUser, conn: DbConn) -> SessionList:
    """{sessions: [{id, type: "video"|"voice", date, time, fan_username, duration, ...}]}."""
    return sessions.upcoming(conn, user, calls.utcnow())
