"""GET|POST /api/cron/bill-active-calls: every minute, bill what lost jobs missed and end silent or unanswered calls."""

from lib import calls
from lib.calls.sweeps import CronResult
from lib.db import DbConn
from lib.http import create_app
from lib.jobs import CronAuth

app = create_app(rate_limit=None)


@app.api_route("/api/cron/bill-active-calls", methods=["GET", "POST"])
def bill_active_calls(_: CronAuth, conn: DbConn) -> CronResult:
    """{callsChecked, minutesBilled, endedInsufficientFunds, endedHeartbeatTimeout, ringsMissed}."""
    return calls.billing_cron(conn, calls.utcnow())
