"""GET /api/classes?startDate&endDate: classes in a window (public); POST /api/classes: a creator schedules one."""

from datetime import datetime
from typing import Annotated

from fastapi import Query, Request

from lib import auth, calls, classes
from lib.auth import CreatorUser
from lib.classes.models import ClassCreated, ClassIn, ClassList
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/classes")
def list_classes(
    request: Request,
    conn: DbConn,
    start_date: Annotated[datetime | None, Query(alias="startDate")] = None,
    end_date: Annotated[datetime | None, Query(alias="endDate")] = None,
) -> ClassList:
    """{classes: [{id, title, startTime, duration, tokenPrice, maxParticipants, currentParticipants, creator, ...}]}."""
    return classes.listing(conn, start_date, end_date, auth.peek_user_uuid(request), calls.utcnow())


@app.post("/api/classes", status_code=201, response_model_by_alias=True)
def create_class(body: ClassIn, user: CreatorUser, conn: DbConn) -> ClassCreated:
    """{success, class}; ClassScheduler.js sends {title, startTime, duration, maxParticipants, tokenPrice, ...}."""
    return classes.create(conn, user, body, calls.utcnow())
