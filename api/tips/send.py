"""POST /api/tips/send: a fan tips a creator, in a live stream or not (retry-safe with or without Idempotency-Key)."""

from fastapi.responses import JSONResponse

from lib import tips
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app
from lib.idempotency import IdempotencyKey

app = create_app()


@app.post("/api/tips/send", response_model=tips.TipResult)
def send_tip(body: tips.TipRequest, user: CurrentUser, conn: DbConn, idem: IdempotencyKey) -> JSONResponse:
    """{tipId, amountTokens, new_balance, creatorCut, platformFee, streamId, replayed, success, data: {...}};
    402 INSUFFICIENT_TOKENS with current_balance and required_amount."""
    return idem.run(conn, user.id, lambda: tips.send_tip(conn, user, body, idempotency_key=idem.key))
