"""GET /api/calls/pending: ringing calls I am in, incoming and outgoing."""

from lib import calls
from lib.auth import CurrentUser
from lib.calls.models import PendingCalls
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/calls/pending")
def pending_calls(user: CurrentUser, conn: DbConn) -> PendingCalls:
    """{calls: [...]}, newest first."""
    return calls.pending(conn, user, calls.utcnow())
