"""GET /api/stripe/payouts: my payouts shaped like Stripe payout objects (PayoutSettings' activity list)."""

from lib import payouts
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/stripe/payouts", response_model=payouts.BankPayoutList)
def list_bank_payouts(user: CreatorUser, conn: DbConn) -> payouts.BankPayoutList:
    """{payouts: [{id, amount (cents), currency, arrival_date, created (unix s), description, status}]}."""
    return payouts.bank_payouts(conn, user.id)
