"""POST /api/payments/create-checkout-session: the buy sheet's Stripe Checkout (`priceId`, `tokenAmount`)."""

from fastapi.responses import JSONResponse

from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app
from lib.idempotency import IdempotencyKey
from lib.payments import purchases

app = create_app(rate_limit="payment")


@app.post("/api/payments/create-checkout-session", response_model=purchases.CheckoutSessionResult)
def create_checkout_session(
    body: purchases.CheckoutRequest, user: CurrentUser, conn: DbConn, idem: IdempotencyKey
) -> JSONResponse:
    """{sessionId, url, checkoutUrl, data: {...the same}}: the pack's table price, whatever `priceId` says."""
    return idem.run(
        conn,
        user.id,
        lambda: purchases.create_checkout_session(conn, user, body, idempotency_key=idem.key),
    )
