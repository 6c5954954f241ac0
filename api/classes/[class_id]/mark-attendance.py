"""POST /api/classes/{class_id}/mark-attendance: a fan in the live class pays its price, once."""

from uuid import UUID

from lib import calls, classes
from lib.auth import CurrentUser
from lib.classes.models import Attendance
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/classes/{class_id}/mark-attendance")
def mark_attendance(class_id: UUID, user: CurrentUser, conn: DbConn) -> Attendance:
    """{alreadyPaid, tokensPaid, balance}; 402 `Insufficient token balance` with {required, current, needed}."""
    return classes.mark_attendance(conn, user, class_id, calls.utcnow())
