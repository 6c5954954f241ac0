"""GET|POST /api/cron/cleanup: stale rings, dead calls and streams, counters, outbox retries, ledger checks."""

from lib import cleanup
from lib.http import create_app
from lib.jobs import CronAuth

app = create_app(rate_limit=None)


@app.api_route("/api/cron/cleanup", methods=["GET", "POST"])
def run_cleanup(_: CronAuth) -> cleanup.CleanupReport:
    """Each step in its own transaction; the report says what each did."""
    return cleanup.run()
