"""GET /api/tokens/balance: my token balance and what it is worth."""

from lib import ledger
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/tokens/balance", response_model=ledger.BalanceOut)
def get_balance(user: CurrentUser, conn: DbConn) -> ledger.BalanceOut:
    """Balance, USD estimate at TOKEN_USD_VALUE, and any debt from refunds of spent tokens."""
    return ledger.balance_summary(conn, user.id)
