"""GET /api/users/check-username/{username}: is this username free (a signed-in user's own counts as free)?"""

from typing import Any

from fastapi import Request

from lib import auth, users
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/users/check-username/{username}")
def check_username(username: str, request: Request, conn: DbConn) -> dict[str, Any]:
    """{available, username, reason}; reason is invalid, reserved, taken or null."""
    return users.check_username(conn, username, requester=auth.peek_user_uuid(request))
