"""POST /api/creator-payouts/stripe-account/create: my Stripe Connect account (created once) and an onboarding link."""

from lib import payouts
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/creator-payouts/stripe-account/create", response_model=payouts.OnboardingResult)
def create_stripe_account(
    body: payouts.OnboardingRequest, user: CreatorUser, conn: DbConn
) -> payouts.OnboardingResult:
    """{url, accountId, payoutsEnabled}: send the creator to `url`; Stripe brings them back to returnUrl."""
    return payouts.start_onboarding(conn, user, body)
