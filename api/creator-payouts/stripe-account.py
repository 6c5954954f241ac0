"""GET /api/creator-payouts/stripe-account: my connected account, if I started onboarding."""

from lib import payouts
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/creator-payouts/stripe-account", response_model=payouts.StripeAccountView)
def get_stripe_account(user: CreatorUser, conn: DbConn) -> payouts.StripeAccountView:
    """{hasAccount, account: {id, payouts_enabled, charges_enabled, details_submitted}, stripeAccount}."""
    return payouts.stripe_account_view(conn, user.id)
