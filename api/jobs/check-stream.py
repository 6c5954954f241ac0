"""POST /api/jobs/check-stream {streamId}: QStash checks a stream whose host left (signed; repeats harmless)."""

from lib import streams
from lib.db import DbConn
from lib.http import create_app
from lib.jobs import QStashJob
from lib.streams.models import CheckResult

app = create_app(rate_limit=None)


@app.post("/api/jobs/check-stream")
def check_stream(job: QStashJob, conn: DbConn) -> CheckResult:
    """{streamId, status, ended, nextCheckIn}: ends the stream if nothing keeps it live, else checks again later."""
    return streams.run_check_job(conn, job)
