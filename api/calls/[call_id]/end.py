"""POST /api/calls/{call_id}/end: either side hangs up; every started minute is settled (idempotent)."""

from uuid import UUID

from lib import calls
from lib.auth import CurrentUser
from lib.calls.models import Summary
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/calls/{call_id}/end")
def end_call(call_id: UUID, user: CurrentUser, conn: DbConn) -> Summary:
    """{callId, durationSeconds, durationMinutes, totalCost, endedBy, endReason}."""
    return calls.end(conn, user, call_id, calls.utcnow())
