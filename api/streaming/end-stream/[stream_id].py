"""POST /api/streaming/end-stream/{stream_id}: the host ends their stream; viewers get stream:ended."""

from uuid import UUID

from lib import streams
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app
from lib.streams.models import EndAnswer

app = create_app()


@app.post("/api/streaming/end-stream/{stream_id}")
def end_stream(stream_id: UUID, user: CurrentUser, conn: DbConn) -> EndAnswer:
    """{stream: {id, durationSeconds, peakViewers, tipsTokens}}; 403 NOT_STREAM_HOST for anyone else."""
    return streams.end_stream(conn, stream_id, user)
