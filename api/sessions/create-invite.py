"""POST /api/sessions/create-invite: book a call with another user at a date and time (either side asks)."""

from lib import calls
from lib.auth import CurrentUser
from lib.calls import sessions
from lib.calls.session_models import CreateInviteIn, InviteCreated
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/sessions/create-invite")
def create_invite(body: CreateInviteIn, user: CurrentUser, conn: DbConn) -> InviteCreated:
    """{success, invite: {id, status, ...}}; without a date and time the call rings now."""
    return sessions.create_invite(conn, user, body, calls.utcnow())
