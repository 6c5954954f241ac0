"""A creator's earnings by state, derived from the ledger at a given moment (nothing here is a mutable counter).

- Earned: every transfer's credit to the creator (tips, call minutes: rows with a counterparty), less what
  refunds and disputes took back from it (`payment_clawbacks`), bucketed by when it was earned.
- Held: earned within the last PAYOUT_RESERVE_DAYS, as far as the balance still holds it.
- Available: earned before the window, less everything paid out or on its way, and never more than the balance
  left after the held tokens. So purchased tokens are never payable, spending takes purchased tokens first, then
  available earnings, then held ones, and a creator in debt (balance 0) has nothing available: future earnings
  repay the debt (the ledger does that on credit) before anything can be paid out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from uuid import UUID

from lib.config import get_settings
from lib.db import Conn
from lib.payouts.models import Earnings


def reserve() -> timedelta:
    """How long an earning is held before it can be paid out."""
    return timedelta(days=get_settings().payout_reserve_days)


def amount_cents(tokens: int) -> int:
    """What `tokens` are worth to a creator in US cents (TOKEN_USD_VALUE per token, fractions of a cent dropped)."""
    cents = Decimal(tokens) * get_settings().token_usd_value * 100
    return int(cents.to_integral_value(rounding=ROUND_FLOOR))


def earnings_of(conn: Conn, creator_id: UUID, now: datetime) -> Earnings:
    """The creator's held, available, pending and paid tokens at `now` (lock the user first to act on them)."""
    cutoff = now - reserve()
    row = conn.execute(
        """WITH me AS (
               SELECT token_balance, token_debt FROM users WHERE id = %(u)s
           ), earned AS (
               SELECT coalesce(sum(amount) FILTER (WHERE created_at > %(cutoff)s), 0) AS held,
                      coalesce(sum(amount) FILTER (WHERE created_at <= %(cutoff)s), 0) AS matured,
                      min(created_at) FILTER (WHERE created_at > %(cutoff)s) AS oldest_held
               FROM token_transactions
               WHERE user_id = %(u)s AND amount > 0 AND counterparty_id IS NOT NULL AND type <> 'platform_fee'
           ), taken AS (
               SELECT coalesce(sum(cut_tokens) FILTER (WHERE earned_at > %(cutoff)s), 0) AS held,
                      coalesce(sum(cut_tokens) FILTER (WHERE earned_at <= %(cutoff)s), 0) AS matured
               FROM payment_clawbacks WHERE user_id = %(u)s AND party = 'earning'
           ), out AS (
               SELECT coalesce(sum(tokens - tokens_returned)
                               FILTER (WHERE status IN ('pending', 'in_transit')), 0) AS pending,
                      coalesce(sum(tokens - tokens_returned) FILTER (WHERE status = 'paid'), 0) AS paid
               FROM payouts WHERE creator_id = %(u)s
           )
           SELECT me.token_balance, me.token_debt, earned.held - taken.held AS held,
                  earned.matured - taken.matured AS matured, earned.oldest_held, out.pending, out.paid
           FROM me, earned, taken, out""",
        {"u": creator_id, "cutoff": cutoff},
    ).fetchone()
    if row is None:
        return Earnings(0, 0, 0, 0, 0, 0, None)
    balance = int(row["token_balance"])
    held = max(0, min(int(row["held"]), balance))
    pending, paid = int(row["pending"]), int(row["paid"])
    available = max(0, min(int(row["matured"]) - pending - paid, balance - held))
    oldest = row["oldest_held"]
    return Earnings(
        balance=balance,
        debt=int(row["token_debt"]),
        held=held,
        available=available,
        pending=pending,
        paid=paid,
        next_release_at=oldest + reserve() if oldest is not None and held > 0 else None,
    )
