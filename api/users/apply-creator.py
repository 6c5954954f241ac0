"""POST /api/users/apply-creator: ask to become a creator (pending until an admin approves)."""

from typing import Any

from lib import creators
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/users/apply-creator", status_code=201)
def apply_creator(
    user: CurrentUser, conn: DbConn, application: creators.CreatorApplication | None = None
) -> dict[str, Any]:
    """201 {application: {id, status, submittedAt}}; 409 ALREADY_CREATOR or APPLICATION_PENDING."""
    return creators.apply(conn, user, application or creators.CreatorApplication())
