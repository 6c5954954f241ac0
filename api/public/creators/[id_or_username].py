"""GET /api/public/creators/{idOrUsername}: a creator's public card with stats (no auth)."""

from typing import Any

from fastapi import Request

from lib import auth, creators
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/public/creators/{id_or_username}")
def public_creator(id_or_username: str, request: Request, conn: DbConn) -> dict[str, Any]:
    """{creator: {id, username, display_name, bio, ...}, stats: {views, followers, subscribers}}; 404 if none."""
    return creators.public_page(conn, id_or_username, viewer=auth.peek_user_uuid(request))
