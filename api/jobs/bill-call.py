"""POST /api/jobs/bill-call {callId, minute}: QStash charges one call minute at its start (signed, deduped)."""

from lib import calls
from lib.calls.billing import MinuteResult
from lib.db import DbConn
from lib.http import create_app
from lib.jobs import QStashJob

app = create_app(rate_limit=None)


@app.post("/api/jobs/bill-call")
def bill_call(job: QStashJob, conn: DbConn) -> MinuteResult:
    """What happened to the minute: billed, already_billed, not_due, inactive, ended, duplicate_delivery."""
    return calls.run_bill_call_job(conn, job, calls.utcnow())
