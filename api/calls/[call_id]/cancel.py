"""POST /api/calls/{call_id}/cancel: the caller withdraws a ringing call."""

from uuid import UUID

from lib import calls
from lib.auth import CurrentUser
from lib.calls.models import Summary
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/calls/{call_id}/cancel")
def cancel_call(call_id: UUID, user: CurrentUser, conn: DbConn) -> Summary:
    """The call's summary (state "cancelled"); repeating it is harmless."""
    return calls.cancel(conn, user, call_id, calls.utcnow())
