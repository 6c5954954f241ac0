"""POST /api/classes/{class_id}/start-stream: the host takes the class live (a stream only enrolled fans join)."""

from uuid import UUID

from lib import calls, classes
from lib.auth import CreatorUser
from lib.classes.models import StreamStarted
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/classes/{class_id}/start-stream")
def start_class_stream(class_id: UUID, user: CreatorUser, conn: DbConn) -> StreamStarted:
    """{success, streamId, channel, alreadyLive, stream: {stream, agora} when this call started it}."""
    return classes.start_stream(conn, user, class_id, calls.utcnow())
