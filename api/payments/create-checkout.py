"""POST /api/payments/create-checkout: a Stripe Checkout Session for a token pack (mobile: {tokens, amount, ...})."""

from fastapi.responses import JSONResponse

from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app
from lib.idempotency import IdempotencyKey
from lib.payments import purchases

app = create_app(rate_limit="payment")


@app.post("/api/payments/create-checkout", response_model=purchases.CheckoutResult)
def create_checkout(
    body: purchases.CheckoutRequest, user: CurrentUser, conn: DbConn, idem: IdempotencyKey
) -> JSONResponse:
    """{sessionId, url, checkoutUrl}; 422 AMOUNT_MISMATCH when `amount` is not the pack's price (nothing charged)."""
    return idem.run(
        conn, user.id, lambda: purchases.create_checkout(conn, user, body, idempotency_key=idem.key)
    )
