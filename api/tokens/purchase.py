"""POST /api/tokens/purchase: buy a token pack with a Stripe PaymentIntent (Idempotency-Key honoured)."""

from fastapi.responses import JSONResponse

from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app
from lib.idempotency import IdempotencyKey
from lib.payments import purchases

app = create_app(rate_limit="payment")


@app.post("/api/tokens/purchase", response_model=purchases.PurchaseResult)
def purchase(
    body: purchases.PurchaseRequest, user: CurrentUser, conn: DbConn, idem: IdempotencyKey
) -> JSONResponse:
    """Confirm a PaymentIntent for the pack; success only when it succeeded (else finish 3-D Secure client-side)."""
    return idem.run(
        conn, user.id, lambda: purchases.purchase_tokens(conn, user, body, idempotency_key=idem.key)
    )
