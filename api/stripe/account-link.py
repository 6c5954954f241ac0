"""POST /api/stripe/account-link {refresh_url, return_url}: a Stripe Connect onboarding link (account made once)."""

from lib import payouts
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post(
    "/api/stripe/account-link", response_model=payouts.OnboardingResult, responses=payouts.STRIPE_UNAVAILABLE
)
def create_account_link(
    user: CreatorUser, conn: DbConn, body: payouts.OnboardingRequest | None = None
) -> payouts.OnboardingResult:
    """{url, onboardingUrl, accountId, payoutsEnabled}: URLs must be on ALLOWED_ORIGINS (none: the wallet page)."""
    return payouts.start_onboarding(conn, user, body)
