"""POST /api/users/follow {creatorUsername | creatorId, action?}: follow or unfollow a creator (CreatorCard)."""

from typing import Any

from lib import creators
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/users/follow")
@app.post("/api/api/users/follow", include_in_schema=False)  # MobileCreatorCard's doubled /api prefix
def follow(body: creators.FollowRequest, user: CurrentUser, conn: DbConn) -> dict[str, Any]:
    """{success, action: followed|unfollowed, following, creatorId, followersCount, subscribersCount}."""
    return creators.follow_request(conn, user, body)
