"""POST /api/classes/{class_id}/join {userId, classId}: take a seat (charged when attending the live class)."""

from uuid import UUID

from lib import calls, classes
from lib.auth import CurrentUser
from lib.classes.models import Joined, JoinIn
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/classes/{class_id}/join")
def join_class(class_id: UUID, user: CurrentUser, conn: DbConn, body: JoinIn | None = None) -> Joined:
    """{success, enrolled, alreadyEnrolled, tokenPrice, currentParticipants}; 409 CLASS_FULL when no seat is left."""
    return classes.join(conn, user, class_id, calls.utcnow())
