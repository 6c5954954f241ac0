"""GET /api/creators/stats: my follower and subscriber counts (creators only)."""

from lib import creators
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/creators/stats")
def creator_stats(user: CreatorUser, conn: DbConn) -> dict[str, int]:
    """{followersCount, subscribersCount}."""
    return creators.follow_counts(conn, user.id)
