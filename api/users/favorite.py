"""POST /api/users/favorite {creatorId, favorite?}: add or remove a favourite creator (FanEngagement)."""

from typing import Any

from lib import creators
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/users/favorite")
def favorite(body: creators.FavoriteRequest, user: CurrentUser, conn: DbConn) -> dict[str, Any]:
    """{success, favorited, creatorId}: a toggle unless `favorite` is sent."""
    return creators.favorite_request(conn, user, body)
