"""POST /api/calls/{call_id}/heartbeat: a participant is still there (send every 10-15 s)."""

from uuid import UUID

from lib import calls
from lib.auth import CurrentUser
from lib.calls.models import Heartbeat
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/calls/{call_id}/heartbeat")
def call_heartbeat(call_id: UUID, user: CurrentUser, conn: DbConn) -> Heartbeat:
    """{callId, state, endReason, billing: {elapsedSeconds, currentMinute, lastBilledMinute, ...}}."""
    return calls.heartbeat(conn, user, call_id, calls.utcnow())
