"""GET /api/classes/enrolled/{user_id}: a user's seats, for their schedule page (self or admin)."""

from uuid import UUID

from lib import calls, classes
from lib.auth import CurrentUser
from lib.classes.models import ClassList
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/classes/enrolled/{user_id}")
def enrolled_classes(user_id: UUID, user: CurrentUser, conn: DbConn) -> ClassList:
    """{classes: [{id, title, scheduled_date, scheduled_time, duration, creator_name, creator_id, price, ...}]}."""
    return classes.enrolled_of(conn, user, user_id, calls.utcnow())
