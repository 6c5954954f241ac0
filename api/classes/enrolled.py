"""GET /api/classes/enrolled: the classes I hold a seat in (ClassesPage reads enrolledClassIds)."""

from lib import calls, classes
from lib.auth import CurrentUser
from lib.classes.models import EnrolledList
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/classes/enrolled")
def my_enrolled_classes(user: CurrentUser, conn: DbConn) -> EnrolledList:
    """{classes, enrolledClassIds}."""
    return classes.my_enrolled(conn, user, calls.utcnow())
