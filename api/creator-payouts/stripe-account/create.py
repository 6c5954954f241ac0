"""POST /api/creator-payouts/stripe-account/create: my Stripe Connect account (created once) and an onboarding link."""

from lib import payouts
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post(
    "/api/creator-payouts/stripe-account/create",
    response_model=payouts.OnboardingResult,
    responses=payouts.STRIPE_UNAVAILABLE,
)
def create_stripe_account(
    user: CreatorUser, conn: DbConn, body: payouts.OnboardingRequest | None = None
) -> payouts.OnboardingResult:
    """{url, onboardingUrl, accountId, payoutsEnabled}; no body: back to the first ALLOWED_ORIGINS origin's /wallet."""
    return payouts.start_onboarding(conn, user, body)
