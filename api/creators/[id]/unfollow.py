"""DELETE /api/creators/{id}/unfollow: stop following a creator (idempotent)."""

from typing import Any
from uuid import UUID

from lib import creators
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.delete("/api/creators/{id}/unfollow")
def unfollow(id: UUID, user: CurrentUser, conn: DbConn) -> dict[str, Any]:
    """{following: false, creatorId, followersCount, subscribersCount}."""
    return creators.unfollow(conn, user, id)
