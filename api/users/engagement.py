"""GET /api/users/engagement: my call history, favourite creators and spending (FanEngagement)."""

from typing import Any

from lib import creators
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/users/engagement")
def engagement(user: CurrentUser, conn: DbConn) -> dict[str, Any]:
    """{watchHistory, favorites, achievements, spending: {thisMonth, total, sessions, tips}}; times in epoch ms."""
    return creators.engagement(conn, user)
