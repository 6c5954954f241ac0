"""GET|PUT /api/creator-payouts/settings: my payout preferences (payout runs honour them)."""

from lib import payouts
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/creator-payouts/settings", response_model=payouts.PayoutPreferences)
def get_payout_settings(user: CreatorUser, conn: DbConn) -> payouts.PayoutPreferences:
    """{payout_enabled, minimum_payout_amount, platform_minimum_payout_amount, payout_schedule, tax_form_submitted}."""
    return payouts.payout_preferences(payouts.preferences_of(conn, user.id))


@app.put("/api/creator-payouts/settings", response_model=payouts.PayoutPreferences)
def update_payout_settings(
    body: payouts.PayoutPreferencesUpdate, user: CreatorUser, conn: DbConn
) -> payouts.PayoutPreferences:
    """A partial update; the page sends back what GET gave it (read-only and unknown keys are ignored)."""
    return payouts.update_payout_preferences(conn, user.id, body)
