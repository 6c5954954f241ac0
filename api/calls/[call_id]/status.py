"""GET /api/calls/{call_id}/status: one call, for its participants."""

from uuid import UUID

from lib import calls
from lib.auth import CurrentUser
from lib.calls.models import CallView
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/calls/{call_id}/status")
def call_status(call_id: UUID, user: CurrentUser, conn: DbConn) -> CallView:
    """{callId, callType, state, connectedAt, endedAt, durationSeconds, totalCost, endReason, ...}."""
    return calls.status(conn, user, call_id, calls.utcnow())
