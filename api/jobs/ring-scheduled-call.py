"""POST /api/jobs/ring-scheduled-call {requestId, version}: QStash rings a booked call at its time (signed, deduped)."""

from lib import calls
from lib.calls import scheduling
from lib.calls.session_models import RingResult
from lib.db import DbConn
from lib.http import create_app
from lib.jobs import QStashJob

app = create_app(rate_limit=None)


@app.post("/api/jobs/ring-scheduled-call")
def ring_scheduled_call(job: QStashJob, conn: DbConn) -> RingResult:
    """What happened: rung, stale (cancelled or rescheduled since), not_due, busy (retried), expired, duplicate."""
    return scheduling.run_ring_job(conn, job.body, job.message_id, calls.utcnow())
