"""GET /api/users/profile[?uid=] (mine, or another user's public subset) and PUT (a partial update of mine)."""

from typing import Any
from uuid import UUID

from lib import users
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/users/profile")
def get_profile(user: CurrentUser, conn: DbConn, uid: UUID | None = None) -> dict[str, Any]:
    """The flat profile; `token_balance` only in my own."""
    return users.profile(conn, uid or user.id, own=uid is None or uid == user.id)


@app.put("/api/users/profile")
def put_profile(update: users.ProfileUpdate, user: CurrentUser, conn: DbConn) -> dict[str, Any]:
    """{user, ignored}: is_creator, role, token_balance and unknown fields are never applied."""
    return users.update_profile(conn, user, update)
