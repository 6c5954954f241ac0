"""GET /api/discovery/trending: {creators} for EnhancedCreatorDiscovery (no auth needed)."""

from typing import Annotated, Any

from fastapi import Query, Request

from lib import auth, creators
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/discovery/trending")
def discover(
    params: Annotated[creators.DiscoveryQuery, Query()], request: Request, conn: DbConn
) -> dict[str, Any]:
    """{creators: [{id, username, displayName, profilePicture, isOnline, creatorProfile, ...}], hasMore}."""
    return creators.discover(conn, "trending", params, viewer=auth.peek_user_uuid(request))
