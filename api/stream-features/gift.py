"""POST /api/stream-features/gift: a fan sends a virtual gift on a live stream (a tip priced from the catalog)."""

from fastapi.responses import JSONResponse

from lib import tips
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app
from lib.idempotency import IdempotencyKey

app = create_app()


@app.post("/api/stream-features/gift", response_model=tips.GiftResult)
def send_gift(body: tips.GiftRequest, user: CurrentUser, conn: DbConn, idem: IdempotencyKey) -> JSONResponse:
    """{giftId, tipId, giftType, quantity, unitCost, totalCost, gift, amountTokens, new_balance, creatorCut,
    platformFee, streamId, replayed, success}; 402 INSUFFICIENT_TOKENS; 422 for an unknown giftType."""
    return idem.run(conn, user.id, lambda: tips.send_gift(conn, user, body, idempotency_key=idem.key))
