"""GET|PUT /api/payments/withdrawal-settings: auto-withdraw and the tokens a creator keeps out of payouts."""

from lib import payouts
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/payments/withdrawal-settings", response_model=payouts.WithdrawalSettingsOut)
def get_withdrawal_settings(user: CreatorUser, conn: DbConn) -> payouts.WithdrawalSettingsOut:
    """{settings: {autoWithdrawEnabled, reservedBalance, withdrawableBalance, availableBalance, minimumPayoutTokens}}."""
    return payouts.withdrawal_page(conn, user.id)


@app.put("/api/payments/withdrawal-settings", response_model=payouts.WithdrawalSettingsOut)
def update_withdrawal_settings(
    body: payouts.WithdrawalSettingsUpdate, user: CreatorUser, conn: DbConn
) -> payouts.WithdrawalSettingsOut:
    """{autoWithdrawEnabled?, reservedBalance? (tokens)}; answers the settings and a `message`."""
    return payouts.update_withdrawal_page(conn, user.id, body)
