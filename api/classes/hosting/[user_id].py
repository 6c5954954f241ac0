"""GET /api/classes/hosting/{user_id}: the classes a creator hosts, for their schedule page (self or admin)."""

from uuid import UUID

from lib import calls, classes
from lib.auth import CurrentUser
from lib.classes.models import ClassList
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/classes/hosting/{user_id}")
def hosting_classes(user_id: UUID, user: CurrentUser, conn: DbConn) -> ClassList:
    """{classes: [{id, title, scheduled_date, scheduled_time, duration, enrolled_count, max_participants, ...}]}."""
    return classes.hosting_of(conn, user, user_id, calls.utcnow())
