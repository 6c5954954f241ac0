"""Release Funds: a creator's standing request to be paid at the next payout run, and that run.

- `queue_intent` stores one pending intent per creator (a second press returns the same one); `cancel_intent`
  withdraws it. Only a creator whose Stripe payouts are enabled can queue one.
- `run_payout_intents` is the payout run (a cleanup-cron step): for every pending intent, and every creator with
  auto-withdraw on, it pays out the withdrawable tokens (available less reserved) through `request_payout`, the
  same path and checks as a manual request, when they reach both the platform minimum and the creator's own.
  A paid intent becomes `consumed` (with its payout); one that cannot be paid yet stays pending with the reason
  in `lastOutcome` and is looked at again by the next run. Each creator is handled in a transaction of its own.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from lib import db, ledger, users
from lib.config import get_settings
from lib.db import Conn
from lib.errors import AppError, BadRequest
from lib.payouts import accounts, clock
from lib.payouts.earnings import amount_cents, earnings_of
from lib.payouts.models import NextCycleInfo, PayoutIntentOut, PayoutIntentView, PayoutRequest
from lib.payouts.preferences import preferences_of
from lib.payouts.transfers import request_payout

log = logging.getLogger("digis.payouts")

# A consumed intent is still shown for this long ("Payout processed"), then the page offers Release Funds again.
CONSUMED_SHOWN_FOR = timedelta(days=1)
NEXT_RUN = NextCycleInfo(description="next", daysUntil=0, cadence="every cleanup cron run (5 minutes on Pro)")
_COLUMNS = """id, status, created_at AS "createdAt", payout_id AS "payoutId", last_outcome AS "lastOutcome",
    checked_at AS "checkedAt", consumed_at AS "consumedAt", cancelled_at AS "cancelledAt\""""


def intent_view(conn: Conn, creator_id: UUID, *, message: str | None = None) -> PayoutIntentView:
    """GET /creator-payouts/intent: the pending intent, or one consumed within CONSUMED_SHOWN_FOR."""
    row = conn.execute(
        f"""SELECT {_COLUMNS} FROM payout_intents
            WHERE creator_id = %(u)s AND (status = 'pending' OR (status = 'consumed' AND consumed_at > %(since)s))
            ORDER BY (status = 'pending') DESC, created_at DESC LIMIT 1""",  # noqa: S608 - fixed text
        {"u": creator_id, "since": clock.now() - CONSUMED_SHOWN_FOR},
    ).fetchone()
    intent = PayoutIntentOut.model_validate(row) if row else None
    return PayoutIntentView(
        intent=intent,
        hasIntent=intent is not None,
        currentIntent=intent,
        nextCycleInfo=NEXT_RUN,
        message=message,
    )


def queue_intent(conn: Conn, creator_id: UUID) -> PayoutIntentView:
    """POST /creator-payouts/intent: queue me for the next payout run (again: the same pending intent)."""
    account = accounts.account_of(conn, creator_id)
    if account is None or not account.payoutsEnabled:
        raise BadRequest(
            "Payouts are not enabled for your account yet: finish Stripe onboarding first",
            code="PAYOUTS_NOT_ENABLED",
            onboardingStarted=account is not None,
        )
    conn.execute(
        """INSERT INTO payout_intents (creator_id) VALUES (%(u)s)
           ON CONFLICT (creator_id) WHERE status = 'pending' DO NOTHING""",
        {"u": creator_id},
    )
    return intent_view(conn, creator_id, message="You're queued for the next payout")


def cancel_intent(conn: Conn, creator_id: UUID) -> PayoutIntentView:
    """DELETE /creator-payouts/intent: withdraw the pending intent (none pending: nothing to do)."""
    conn.execute(
        """UPDATE payout_intents SET status = 'cancelled', cancelled_at = now(), updated_at = now()
           WHERE creator_id = %(u)s AND status = 'pending'""",
        {"u": creator_id},
    )
    return PayoutIntentView(
        intent=None,
        hasIntent=False,
        currentIntent=None,
        nextCycleInfo=NEXT_RUN,
        message="Payout request canceled",
    )


def run_payout_intents(now: datetime | None = None, *, limit: int = 200) -> dict[str, int]:
    """The payout run: pay every queued (or auto-withdrawing) creator who can be paid; counts by outcome."""
    now = now or clock.now()
    with db.transaction() as conn:
        due = conn.execute(
            """SELECT creator_id FROM payout_intents WHERE status = 'pending'
               UNION
               SELECT creator_id FROM payout_settings WHERE auto_withdraw_enabled AND payout_enabled
               LIMIT %(n)s""",
            {"n": limit},
        ).fetchall()
    outcome: dict[str, int] = {"checked": len(due)}
    for r in due:
        with db.transaction() as conn:
            result = honour(conn, r["creator_id"], now)
        outcome[result] = outcome.get(result, 0) + 1
    return outcome


def honour(conn: Conn, creator_id: UUID, now: datetime) -> str:
    """Pay this creator's withdrawable tokens if they can be paid now; `paid` or the reason they were not."""
    creator = users.get(conn, creator_id)
    if creator is None:
        return "missing"
    ledger.lock_users(conn, [creator_id])
    intent = conn.execute(
        "SELECT id FROM payout_intents WHERE creator_id = %(u)s AND status = 'pending' FOR UPDATE",
        {"u": creator_id},
    ).fetchone()
    prefs = preferences_of(conn, creator_id)
    if intent is None and not (prefs.auto_withdraw_enabled and prefs.payout_enabled):
        return "nothing_queued"
    reason = _why_not(conn, creator_id, prefs, now)
    if reason is None:
        try:
            tokens = prefs.withdrawable(earnings_of(conn, creator_id, now))
            paid = request_payout(conn, creator, PayoutRequest(tokens=tokens), now=now)
        except AppError as exc:  # the checks above mirror request_payout's; this only covers a race
            reason = exc.code
        else:
            if intent is not None:
                conn.execute(
                    """UPDATE payout_intents SET status = 'consumed', payout_id = %(p)s, consumed_at = %(now)s,
                              checked_at = %(now)s, last_outcome = 'PAID', updated_at = now()
                       WHERE id = %(id)s""",
                    {"p": paid.payout.id, "id": intent["id"], "now": now},
                )
            return "paid"
    if intent is not None:
        conn.execute(
            """UPDATE payout_intents SET last_outcome = %(r)s, checked_at = %(now)s, updated_at = now()
               WHERE id = %(id)s""",
            {"r": reason, "id": intent["id"], "now": now},
        )
    return reason


def _why_not(conn: Conn, creator_id: UUID, prefs: Any, now: datetime) -> str | None:
    """Why the creator cannot be paid now, or None."""
    if not prefs.payout_enabled:
        return "PAYOUTS_PAUSED"
    account = accounts.account_of(conn, creator_id)
    if account is None or not account.payoutsEnabled:
        return "PAYOUTS_NOT_ENABLED"
    tokens = prefs.withdrawable(earnings_of(conn, creator_id, now))
    if tokens < get_settings().payout_minimum_tokens or amount_cents(tokens) < prefs.minimum_payout_cents:
        return "BELOW_MINIMUM"
    return None
