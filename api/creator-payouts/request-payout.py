"""POST /api/creator-payouts/request-payout: pay out available tokens to my Stripe account (Idempotency-Key honoured)."""

from fastapi.responses import JSONResponse

from lib import payouts
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app
from lib.idempotency import IdempotencyKey

app = create_app(rate_limit="payment")


@app.post("/api/creator-payouts/request-payout", response_model=payouts.PayoutResult)
def request_payout(
    user: CreatorUser, conn: DbConn, idem: IdempotencyKey, body: payouts.PayoutRequest | None = None
) -> JSONResponse:
    """{payout: {id, tokens, amountCents, status}}; 400 BELOW_MINIMUM, PAYOUTS_NOT_ENABLED, INSUFFICIENT_AVAILABLE_TOKENS."""
    return idem.run(conn, user.id, lambda: payouts.request_payout(conn, user, body))
