"""What creators and admins see: the payouts dashboard and the admin stats section."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from uuid import UUID

from lib.config import get_settings
from lib.db import Conn
from lib.payouts import accounts, clock
from lib.payouts.earnings import amount_cents, earnings_of
from lib.payouts.models import (
    BankPayout,
    BankPayoutList,
    Dashboard,
    DashboardSummary,
    EarningRow,
    PayoutHistory,
    PayoutRow,
)
from lib.payouts.preferences import preferences_of
from lib.payouts.transfers import PAYOUT_COLUMNS, payout_out
from lib.users import User

HISTORY = 50  # payouts listed on the dashboard, newest first
RECENT = 10  # recentPayouts / recentEarnings on the dashboard
ADMIN_RECENT = 100  # payouts listed in /admin/stats, newest first
# Our payout states in the frontend's words (its badges know pending, processing, paid, failed).
FRONTEND_STATUS = {"in_transit": "processing"}
# Ledger kinds of earnings in RecentEarnings' words (its icons know session, tip, content_purchase, membership).
EARNING_TYPES = {"call": ("session", "Call minute"), "tip": ("tip", "Tip")}
# One payout row with the period it covers: from the creator's previous payout (or sign-up) to its request.
_ROWS = """SELECT p.id, p.tokens, p.amount_cents, p.amount_reversed_cents, p.status, p.created_at, p.paid_at,
                  coalesce(lag(p.created_at) OVER (ORDER BY p.created_at, p.id), u.created_at) AS period_start,
                  count(*) OVER () AS total
           FROM payouts p JOIN users u ON u.id = p.creator_id
           WHERE p.creator_id = %(u)s"""


def dashboard(conn: Conn, creator: User, *, now: datetime | None = None) -> Dashboard:
    """GET /creator-payouts/dashboard: tokens by state, the payout history, the connected account."""
    mine = earnings_of(conn, creator.id, now or clock.now())
    rows = conn.execute(
        f"""SELECT {PAYOUT_COLUMNS} FROM payouts WHERE creator_id = %(u)s
            ORDER BY created_at DESC, id DESC LIMIT %(n)s""",  # noqa: S608 - fixed text
        {"u": creator.id, "n": HISTORY},
    ).fetchall()
    s = get_settings()
    account = accounts.account_of(conn, creator.id)
    withdrawable = preferences_of(conn, creator.id).withdrawable(mine)
    summary = DashboardSummary(
        pending_usd=amount_cents(withdrawable) / 100,
        can_receive_payouts=bool(account and account.payoutsEnabled),
        available_tokens=mine.available,
        withdrawable_tokens=withdrawable,
        held_tokens=mine.held,
        pending_payout_tokens=mine.pending,
        paid_tokens=mine.paid,
        minimum_payout_tokens=s.payout_minimum_tokens,
        minimum_payout_usd=amount_cents(s.payout_minimum_tokens) / 100,
    )
    return Dashboard(
        availableTokens=mine.available,
        heldTokens=mine.held,
        pendingTokens=mine.pending,
        paidTokens=mine.paid,
        debtTokens=mine.debt,
        availableCents=amount_cents(mine.available),
        heldCents=amount_cents(mine.held),
        tokenUsdValue=float(s.token_usd_value),
        minimumPayoutTokens=s.payout_minimum_tokens,
        reserveDays=s.payout_reserve_days,
        nextReleaseAt=mine.next_release_at,
        payouts=[payout_out(r) for r in rows],
        stripeAccount=account,
        dashboard=summary,
        recentPayouts=payout_history(conn, creator.id, page=1, limit=RECENT).payouts,
        recentEarnings=recent_earnings(conn, creator.id, limit=RECENT),
    )


def payout_history(conn: Conn, creator_id: UUID, *, page: int, limit: int) -> PayoutHistory:
    """GET /creator-payouts/history: my payouts, newest first, a page at a time."""
    rows = conn.execute(
        f"""SELECT * FROM ({_ROWS}) p ORDER BY created_at DESC, id DESC
            LIMIT %(n)s OFFSET %(o)s""",  # noqa: S608 - fixed text
        {"u": creator_id, "n": limit, "o": (page - 1) * limit},
    ).fetchall()
    total = int(rows[0]["total"]) if rows else _payout_count(conn, creator_id)
    return PayoutHistory(
        payouts=[_row(r) for r in rows],
        page=page,
        limit=limit,
        total=total,
        totalPages=max(1, math.ceil(total / limit)),
        hasMore=page * limit < total,
    )


def bank_payouts(conn: Conn, creator_id: UUID, *, limit: int = HISTORY) -> BankPayoutList:
    """GET /stripe/payouts: my payouts shaped like Stripe payout objects (cents, unix seconds)."""
    rows = conn.execute(
        f"""SELECT {PAYOUT_COLUMNS} FROM payouts WHERE creator_id = %(u)s
            ORDER BY created_at DESC, id DESC LIMIT %(n)s""",  # noqa: S608 - fixed text
        {"u": creator_id, "n": limit},
    ).fetchall()
    return BankPayoutList(
        payouts=[
            BankPayout(
                id=r["id"],
                amount=int(r["amount_cents"]) - int(r["amount_reversed_cents"]),
                currency="usd",
                arrival_date=int((r["paid_at"] or r["created_at"]).timestamp()),
                created=int(r["created_at"].timestamp()),
                description=f"Payout of {int(r['tokens']):,} tokens",
                status=r["status"],
            )
            for r in rows
        ]
    )


def recent_earnings(conn: Conn, creator_id: UUID, *, limit: int) -> list[EarningRow]:
    """The creator's latest earnings (credits from another user), newest first."""
    rows = conn.execute(
        """SELECT t.id, t.type, t.amount, t.created_at, coalesce(f.display_name, f.username) AS fan_name
           FROM token_transactions t LEFT JOIN users f ON f.id = t.counterparty_id
           WHERE t.user_id = %(u)s AND t.amount > 0 AND t.counterparty_id IS NOT NULL AND t.type <> 'platform_fee'
           ORDER BY t.created_at DESC, t.id DESC LIMIT %(n)s""",
        {"u": creator_id, "n": limit},
    ).fetchall()
    out = []
    for r in rows:
        kind, description = EARNING_TYPES.get(
            r["type"], (r["type"], str(r["type"]).replace("_", " ").capitalize())
        )
        out.append(
            EarningRow(
                id=str(r["id"]),
                earning_type=kind,
                description=description,
                fan_name=r["fan_name"],
                earned_at=r["created_at"],
                tokens_earned=int(r["amount"]),
                usd_value=amount_cents(int(r["amount"])) / 100,
            )
        )
    return out


def _row(r: Any) -> PayoutRow:
    usd = int(r["amount_cents"]) / 100
    return PayoutRow(
        id=r["id"],
        tokens_earned=int(r["tokens"]),
        usd_amount=usd,
        platform_fee_amount=0.0,
        net_payout_amount=(int(r["amount_cents"]) - int(r["amount_reversed_cents"])) / 100,
        payout_period_start=r["period_start"],
        payout_period_end=r["created_at"],
        status=FRONTEND_STATUS.get(r["status"], r["status"]),
        created_at=r["created_at"],
        paid_at=r["paid_at"],
    )


def _payout_count(conn: Conn, creator_id: UUID) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM payouts WHERE creator_id = %(u)s", {"u": creator_id}
    ).fetchone()
    return int(row["n"]) if row else 0


def admin_section(conn: Conn) -> dict[str, Any]:
    """The /admin/stats `payouts` section: totals by status, creators' debt, and every recent payout."""
    by_status = {
        r["status"]: {"count": int(r["n"]), "tokens": int(r["tokens"]), "amountCents": int(r["cents"])}
        for r in conn.execute(
            """SELECT status, count(*) AS n, coalesce(sum(tokens - tokens_returned), 0) AS tokens,
                      coalesce(sum(amount_cents - amount_reversed_cents), 0) AS cents
               FROM payouts GROUP BY status"""
        ).fetchall()
    }
    debt = conn.execute(
        "SELECT coalesce(sum(token_debt), 0) AS tokens, count(*) AS n FROM users WHERE is_creator AND token_debt > 0"
    ).fetchone()
    recent = conn.execute(
        """SELECT p.id, p.creator_id AS "creatorId", u.username AS "creatorUsername", p.tokens,
                  p.amount_cents AS "amountCents", p.status, p.tokens_returned AS "tokensReturned",
                  p.stripe_account_id AS "stripeAccountId", p.stripe_transfer_id AS "stripeTransferId",
                  p.failure_code AS "failureCode", p.created_at AS "createdAt", p.paid_at AS "paidAt"
           FROM payouts p JOIN users u ON u.id = p.creator_id
           ORDER BY p.created_at DESC, p.id DESC LIMIT %(n)s""",
        {"n": ADMIN_RECENT},
    ).fetchall()
    return {
        "payouts": {
            "byStatus": by_status,
            "creatorDebt": {"tokens": int(debt["tokens"]), "creators": int(debt["n"])} if debt else None,
            "recent": recent,
        }
    }
