"""GET|POST|DELETE /api/creator-payouts/intent: "Release Funds" for the next payout run."""

from lib import payouts
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/creator-payouts/intent", response_model=payouts.PayoutIntentView)
def get_payout_intent(user: CreatorUser, conn: DbConn) -> payouts.PayoutIntentView:
    """{ok, intent, hasIntent, currentIntent, nextCycleInfo}: the pending intent, or one consumed in the last day."""
    return payouts.intent_view(conn, user.id)


@app.post("/api/creator-payouts/intent", response_model=payouts.PayoutIntentView)
def queue_payout_intent(user: CreatorUser, conn: DbConn) -> payouts.PayoutIntentView:
    """Queue me (again: the same pending intent); 400 PAYOUTS_NOT_ENABLED before Stripe onboarding is done."""
    return payouts.queue_intent(conn, user.id)


@app.delete("/api/creator-payouts/intent", response_model=payouts.PayoutIntentView)
def cancel_payout_intent(user: CreatorUser, conn: DbConn) -> payouts.PayoutIntentView:
    """Withdraw the pending intent (nothing pending: still ok)."""
    return payouts.cancel_intent(conn, user.id)
