"""GET /api/creator-payouts/dashboard: my earnings (available, held, pending, paid, debt) and payout history."""

from lib import payouts
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/creator-payouts/dashboard", response_model=payouts.Dashboard)
def payout_dashboard(user: CreatorUser, conn: DbConn) -> payouts.Dashboard:
    """Tokens by state (earnings are held for PAYOUT_RESERVE_DAYS), the last payouts, the Stripe account."""
    return payouts.dashboard(conn, user)
