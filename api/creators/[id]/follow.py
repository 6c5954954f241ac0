"""POST /api/creators/{id}/follow: follow a creator (idempotent)."""

from typing import Any
from uuid import UUID

from lib import creators
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/creators/{id}/follow")
def follow(id: UUID, user: CurrentUser, conn: DbConn) -> dict[str, Any]:
    """{following: true, creatorId, followersCount, subscribersCount}; 404 if `id` is not a creator."""
    return creators.follow(conn, user, id)
