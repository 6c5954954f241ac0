"""GET /api/users/search?q=: creators by name (TokenTipping's recipient picker); no auth needed."""

from typing import Annotated, Any

from fastapi import Query, Request

from lib import auth, creators
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/users/search")
def search_users(
    request: Request,
    conn: DbConn,
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> dict[str, Any]:
    """{creators: [{id, username, display_name, profile_pic_url, ...}], query}; best match first."""
    return creators.search(conn, q, viewer=auth.peek_user_uuid(request), limit=limit)
