"""GET /api/discovery/categories: the creator categories in use, with counts (no auth needed)."""

from typing import Any

from lib import creators
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/discovery/categories")
def categories(conn: DbConn) -> dict[str, Any]:
    """{categories: [{id, name, creatorCount}]}, biggest first."""
    return creators.categories(conn)
