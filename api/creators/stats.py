"""GET /api/creators/stats: my follower and subscriber counts (creators only)."""

from typing import Any

from lib import creators
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/creators/stats")
def creator_stats(user: CreatorUser, conn: DbConn) -> dict[str, Any]:
    """{success, followersCount, subscribersCount, data: {same}}; subscribers stay 0 until subscriptions exist."""
    return creators.creator_stats(conn, user)
