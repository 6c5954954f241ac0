"""Ledger reads for the token routes (balance:update is published by whoever wrote the change: lib/realtime)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from psycopg import sql
from pydantic import BaseModel

from lib.config import get_settings
from lib.db import Conn
from lib.ledger.models import UserId
from lib.ledger.postings import key_used

# --- reads ----------------------------------------------------------------------------------------------------


def balance(conn: Conn, user_id: UserId) -> int:
    """The user's cached balance (0 for an unknown user)."""
    row = conn.execute("SELECT token_balance FROM users WHERE id = %(id)s", {"id": user_id}).fetchone()
    return int(row["token_balance"]) if row else 0


def debt(conn: Conn, user_id: UserId) -> int:
    """Tokens the user owes from refunds and disputes of tokens already spent."""
    row = conn.execute("SELECT token_debt FROM users WHERE id = %(id)s", {"id": user_id}).fetchone()
    return int(row["token_debt"]) if row else 0


def key_was_used(conn: Conn, key: str) -> bool:
    """True when a posting with this idempotency key exists (the thing it paid for was paid)."""
    row = conn.execute(
        sql.SQL("SELECT {} AS used").format(key_used(sql.Placeholder("k"))), {"k": key}
    ).fetchone()
    return bool(row and row["used"])


class BalanceOut(BaseModel):
    """GET /tokens/balance."""

    balance: int
    usdEstimate: float
    tokenValue: float
    debt: int


class Reference(BaseModel):
    """What caused a ledger row."""

    type: str | None
    id: str | None


class TransactionOut(BaseModel):
    """One row of my ledger."""

    id: UUID
    type: str
    amount: int
    balance_after: int
    created_at: datetime
    reference: Reference
    counterparty_id: UUID | None


class TransactionPage(BaseModel):
    """GET /tokens/transactions."""

    transactions: list[TransactionOut]
    total: int
    limit: int
    offset: int
    hasMore: bool


def balance_summary(conn: Conn, user_id: UserId) -> BalanceOut:
    """My balance, what it is worth to a creator in USD, and any debt."""
    row = conn.execute(
        "SELECT token_balance, token_debt FROM users WHERE id = %(id)s", {"id": user_id}
    ).fetchone()
    bal, owed = (int(row["token_balance"]), int(row["token_debt"])) if row else (0, 0)
    value = get_settings().token_usd_value
    return BalanceOut(
        balance=bal,
        usdEstimate=float((Decimal(bal) * value).quantize(Decimal("0.01"))),
        tokenValue=float(value),
        debt=owed,
    )


def transactions(conn: Conn, user_id: UserId, *, limit: int, offset: int) -> TransactionPage:
    """The user's own ledger rows, newest first."""
    rows = conn.execute(
        """SELECT id, type, amount, balance_after, created_at, reference_type, reference_id, counterparty_id,
                  count(*) OVER () AS total
           FROM token_transactions WHERE user_id = %(u)s
           ORDER BY seq DESC LIMIT %(limit)s OFFSET %(offset)s""",
        {"u": user_id, "limit": limit, "offset": offset},
    ).fetchall()
    if rows:
        total = int(rows[0]["total"])
    else:
        found = conn.execute(
            "SELECT count(*) AS n FROM token_transactions WHERE user_id = %(u)s", {"u": user_id}
        ).fetchone()
        total = int(found["n"]) if found else 0
    items = [
        TransactionOut(
            id=r["id"],
            type=r["type"],
            amount=int(r["amount"]),
            balance_after=int(r["balance_after"]),
            created_at=r["created_at"],
            reference=Reference(type=r["reference_type"], id=r["reference_id"]),
            counterparty_id=r["counterparty_id"],
        )
        for r in rows
    ]
    return TransactionPage(
        transactions=items, total=total, limit=limit, offset=offset, hasMore=offset + len(items) < total
    )
