"""GET /wallet: the balance under the names the wallet pages read (WalletOptimized.js, PayoutSettings.js)."""

from __future__ import annotations

from uuid import UUID

from lib import ledger
from lib.db import Conn
from lib.ledger import BalanceOut


class WalletOut(BalanceOut):
    """GET /tokens/balance's fields, plus `tokens` and `total_balance` (both the same spendable balance)."""

    tokens: int
    total_balance: int


def wallet(conn: Conn, user_id: UUID) -> WalletOut:
    """The same ledger read as GET /tokens/balance."""
    summary = ledger.balance_summary(conn, user_id)
    return WalletOut(**summary.model_dump(), tokens=summary.balance, total_balance=summary.balance)
