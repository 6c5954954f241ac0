"""GET /api/wallet: my balance as the wallet pages read it (`tokens`, `total_balance`), from the same ledger."""

from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app
from lib.payments import wallet

app = create_app()


@app.get("/api/wallet", response_model=wallet.WalletOut)
def get_wallet(user: CurrentUser, conn: DbConn) -> wallet.WalletOut:
    """{tokens, total_balance, balance, usdEstimate, tokenValue, debt}: what GET /tokens/balance says, twice named."""
    return wallet.wallet(conn, user.id)
