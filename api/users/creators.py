"""GET /api/users/creators: the public creator directory (no auth; `following=1` needs a signed-in viewer)."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import Query, Request

from lib import auth, creators
from lib.db import DbConn
from lib.http import EdgeCache, create_app

# Public to anonymous visitors; a signed-in viewer's answer (following, ...) is private.
app = create_app(edge_cache=EdgeCache(s_maxage=10, stale_while_revalidate=30, per_viewer=True))


@app.get("/api/users/creators")
def list_creators(
    request: Request,
    conn: DbConn,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    offset: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
    category: Annotated[str | None, Query(max_length=50)] = None,
    online_only: Annotated[bool, Query(alias="onlineOnly")] = False,
    sort_by: Annotated[creators.SortBy, Query(alias="sortBy")] = "newest",
    following: bool = False,
    exclude_user_id: Annotated[UUID | None, Query(alias="excludeUserId")] = None,
    languages: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """{creators: [...], total, limit, offset, page, hasMore}; `offset` wins over `page` when both are sent."""
    start = offset if offset is not None else (page - 1) * limit
    viewer = auth.peek_user_uuid(request)
    return creators.directory(
        conn,
        limit=limit,
        offset=start,
        category=category,
        online_only=online_only,
        sort_by=sort_by,
        viewer=viewer,
        following=following,
        exclude_user_id=exclude_user_id,
        languages=languages.split(",") if languages else None,
    )
