"""Reconciliation for the cleanup cron: cached values against ledger sums, balance_after chains, conservation,
payouts against their ledger rows, and purchase lots (provenance) never above the balance they track."""

from __future__ import annotations

from lib import observability
from lib.db import Conn
from lib.ledger.models import DEBT_REPAYMENT, OUTSIDE_KINDS, PAYMENT_KINDS, Drift, Report

# --- reconciliation -------------------------------------------------------------------------------------------


def reconcile(conn: Conn, *, limit: int = 100) -> Report:
    """Check the books (each cached balance and debt equals its ledger sum, balance_after chains, tokens are
    conserved); log and report any drift to Sentry. Read-only; run it from the cleanup cron."""
    report = Report()
    report.users_checked = int(conn.execute("SELECT count(*) AS n FROM users").fetchone()["n"])  # type: ignore[index]
    report.balance_drift = [
        Drift(r["id"], int(r["cached"]), int(r["ledger"]))
        for r in conn.execute(
            """SELECT u.id, u.token_balance AS cached, coalesce(t.total, 0) AS ledger
               FROM users u
               LEFT JOIN (SELECT user_id, sum(amount) AS total FROM token_transactions GROUP BY user_id) t
                      ON t.user_id = u.id
               WHERE u.token_balance <> coalesce(t.total, 0)
               LIMIT %(limit)s""",
            {"limit": limit},
        ).fetchall()
    ]
    report.debt_drift = [
        Drift(r["id"], int(r["cached"]), int(r["ledger"]))
        for r in conn.execute(
            """SELECT u.id, u.token_debt AS cached, coalesce(d.total, 0) AS ledger
               FROM users u
               LEFT JOIN (SELECT user_id, sum(amount) AS total FROM token_debts GROUP BY user_id) d
                      ON d.user_id = u.id
               WHERE u.token_debt <> coalesce(d.total, 0)
               LIMIT %(limit)s""",
            {"limit": limit},
        ).fetchall()
    ]
    report.chain_breaks = [
        dict(r)
        for r in conn.execute(
            """SELECT 'token_transactions' AS ledger, user_id, id, seq, amount, balance_after AS after, prev
               FROM (SELECT user_id, id, seq, amount, balance_after,
                            lag(balance_after, 1, 0::bigint) OVER (PARTITION BY user_id ORDER BY seq) AS prev
                     FROM token_transactions) t
               WHERE balance_after <> prev + amount
               UNION ALL
               SELECT 'token_debts', user_id, id, seq, amount, debt_after, prev
               FROM (SELECT user_id, id, seq, amount, debt_after,
                            lag(debt_after, 1, 0::bigint) OVER (PARTITION BY user_id ORDER BY seq) AS prev
                     FROM token_debts) d
               WHERE debt_after <> prev + amount
               LIMIT %(limit)s""",
            {"limit": limit},
        ).fetchall()
    ]
    totals = conn.execute(
        """SELECT (SELECT coalesce(sum(token_balance), 0) FROM users) AS balances,
                  (SELECT coalesce(sum(token_debt), 0) FROM users) AS debts,
                  (SELECT coalesce(sum(tokens_applied), 0) FROM payments) AS payments,
                  (SELECT coalesce(sum(amount), 0) FROM token_transactions WHERE type = ANY(%(outside)s))
                - (SELECT coalesce(sum(amount), 0) FROM token_debts WHERE type = ANY(%(outside)s)) AS outside,
                  (SELECT coalesce(sum(amount), 0) FROM token_transactions
                    WHERE NOT (type = ANY(%(external)s)))
                - (SELECT coalesce(sum(amount), 0) FROM token_debts WHERE type = %(repay)s) AS internal""",
        {
            "outside": sorted(OUTSIDE_KINDS),
            "external": sorted(PAYMENT_KINDS | OUTSIDE_KINDS),
            "repay": DEBT_REPAYMENT,
        },
    ).fetchone()
    assert totals is not None
    report.balances_total = int(totals["balances"])
    report.debts_total = int(totals["debts"])
    report.payments_total = int(totals["payments"])
    report.outside_total = int(totals["outside"])
    report.internal_net = int(totals["internal"])
    # Payouts: what the payouts table says left the books equals what the ledger's payout rows took out.
    paid = conn.execute(
        """SELECT (SELECT coalesce(sum(tokens - tokens_returned), 0) FROM payouts) AS table_total,
                  (SELECT coalesce(-sum(amount), 0) FROM token_transactions
                    WHERE type IN ('payout', 'payout_reversal')) AS ledger_total"""
    ).fetchone()
    assert paid is not None
    report.payouts_drift = int(paid["table_total"]) - int(paid["ledger_total"])
    report.lot_excess = [
        Drift(r["id"], int(r["cached"]), int(r["ledger"]))
        for r in conn.execute(
            """SELECT u.id, u.token_balance AS cached, l.total AS ledger
               FROM (SELECT user_id, sum(remaining) AS total FROM purchase_lots WHERE remaining > 0
                     GROUP BY user_id) l
               JOIN users u ON u.id = l.user_id
               WHERE l.total > u.token_balance
               LIMIT %(limit)s""",
            {"limit": limit},
        ).fetchall()
    ]
    if not report.ok:
        observability.capture_message(
            "ledger drift",
            level="error",
            balance_drift=[d.__dict__ for d in report.balance_drift],
            debt_drift=[d.__dict__ for d in report.debt_drift],
            chain_breaks=report.chain_breaks,
            conservation_drift=report.conservation_drift,
            internal_net=report.internal_net,
            payouts_drift=report.payouts_drift,
            lot_excess=[d.__dict__ for d in report.lot_excess],
        )
    return report
