"""What creators and admins see: the payouts dashboard and the admin stats section."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lib.config import get_settings
from lib.db import Conn
from lib.payouts import accounts, clock
from lib.payouts.earnings import amount_cents, earnings_of
from lib.payouts.models import Dashboard
from lib.payouts.transfers import PAYOUT_COLUMNS, payout_out
from lib.users import User

HISTORY = 50  # payouts listed on the dashboard, newest first
ADMIN_RECENT = 100  # payouts listed in /admin/stats, newest first


def dashboard(conn: Conn, creator: User, *, now: datetime | None = None) -> Dashboard:
    """GET /creator-payouts/dashboard: tokens by state, the payout history, the connected account."""
    mine = earnings_of(conn, creator.id, now or clock.now())
    rows = conn.execute(
        f"""SELECT {PAYOUT_COLUMNS} FROM payouts WHERE creator_id = %(u)s
            ORDER BY created_at DESC, id DESC LIMIT %(n)s""",  # noqa: S608 - fixed text
        {"u": creator.id, "n": HISTORY},
    ).fetchall()
    s = get_settings()
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
        stripeAccount=accounts.account_of(conn, creator.id),
    )


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
