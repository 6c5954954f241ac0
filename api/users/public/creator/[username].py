"""GET /api/users/public/creator/{username}: a creator's public page (no auth; isFollowing when signed in)."""

from typing import Any

from fastapi import Request

from lib import auth, creators
from lib.db import DbConn
from lib.http import EdgeCache, create_app

# Public to anonymous visitors; a signed-in viewer's answer (following, ...) is private.
app = create_app(edge_cache=EdgeCache(s_maxage=10, stale_while_revalidate=30, per_viewer=True))


@app.get("/api/users/public/creator/{username}")
def public_creator(username: str, request: Request, conn: DbConn) -> dict[str, Any]:
    """{creator: {id, username, display_name, bio, profilePicUrl, ..., followerCount}}; 404 if no such creator."""
    return creators.public_profile(conn, username, viewer=auth.peek_user_uuid(request))
