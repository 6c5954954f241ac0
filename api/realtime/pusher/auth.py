"""POST /api/realtime/pusher/auth (form socket_id, channel_name): sign a Pusher subscription, or 403."""

from typing import Annotated, Any

from fastapi import Form

from lib import calls
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/realtime/pusher/auth")
def pusher_auth(
    user: CurrentUser,
    conn: DbConn,
    socket_id: Annotated[str, Form(max_length=64)],
    channel_name: Annotated[str, Form(max_length=200)],
) -> dict[str, Any]:
    """{auth} (+ channel_data on presence channels): my user channel, my calls, live streams."""
    return calls.authorize_pusher(conn, user, socket_id, channel_name)
