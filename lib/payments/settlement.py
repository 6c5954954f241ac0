"""Settlement: a payment's Stripe state turned into ledger rows, whatever order or however often it arrives.

A payment's tokens reach the ledger only through `sync_payment`, which computes what the payment should give the
user now (`tokens` once the intent succeeded, less refunded and disputed tokens) and moves `tokens_applied`
there with one credit or clawback (`clawbacks`: who gives back what, the creators the tokens were spent on
included). Whatever order or however often Stripe's events (or the purchase route) call it, the user ends up
credited once per intent.

Rounding: a partial refund or dispute of `c` cents takes back ceil(tokens * c / amount_cents) tokens.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Literal

from lib import ledger, observability, realtime
from lib.db import Conn
from lib.payments import clawbacks, stripe_api

CURRENCY = "usd"
# Disputes in these states no longer hold tokens back (decided in our favour, or an inquiry closed).
DISPUTE_RELEASED = frozenset({"won", "warning_closed"})
SyncCause = Literal["purchase", "refund", "dispute", "dispute_closed"]


@dataclass(frozen=True)
class SyncResult:
    """What `sync_payment` changed: tokens moved (signed) and the user's balance after."""

    user_id: uuid.UUID
    delta: int
    balance_after: int


def record_intent(
    conn: Conn,
    *,
    user_id: uuid.UUID,
    intent: stripe_api.Intent,
    tokens: int,
    idempotency_key: str | None = None,
    buyer_id: uuid.UUID | None = None,
    fingerprint: str | None = None,
    stripe_key: str | None = None,
) -> None:
    """Create or update the payments row for an intent (a succeeded status is never overwritten)."""
    _lock_intent(conn, intent.id)
    conn.execute(
        """INSERT INTO payments (user_id, stripe_payment_intent_id, tokens, amount_cents, currency, status,
                                 idempotency_key, buyer_id, purchase_fingerprint, stripe_idempotency_key)
           VALUES (%(u)s, %(pi)s, %(t)s, %(a)s, %(c)s, %(s)s, %(k)s, %(b)s, %(fp)s, %(sk)s)
           ON CONFLICT (stripe_payment_intent_id) DO UPDATE
           SET status = CASE WHEN payments.status = 'succeeded' THEN payments.status ELSE EXCLUDED.status END,
               buyer_id = coalesce(payments.buyer_id, EXCLUDED.buyer_id),
               purchase_fingerprint = coalesce(payments.purchase_fingerprint, EXCLUDED.purchase_fingerprint),
               stripe_idempotency_key = coalesce(payments.stripe_idempotency_key, EXCLUDED.stripe_idempotency_key),
               updated_at = now()""",
        {
            "u": user_id,
            "pi": intent.id,
            "t": tokens,
            "a": intent.amount,
            "c": intent.currency,
            "s": intent.status,
            "k": idempotency_key,
            "b": buyer_id,
            "fp": fingerprint,
            "sk": stripe_key,
        },
    )


def set_intent_status(conn: Conn, intent_id: str, status: str) -> None:
    """Record a non-final status change (failed, canceled, processing); never downgrades a success."""
    _lock_intent(conn, intent_id)
    conn.execute(
        """UPDATE payments SET status = %(s)s, updated_at = now()
           WHERE stripe_payment_intent_id = %(pi)s AND status <> 'succeeded'""",
        {"s": status, "pi": intent_id},
    )


def record_refund(
    conn: Conn, *, charge_id: str, intent_id: str, amount_cents: int, refunded_cents: int
) -> None:
    """Record a charge's cumulative refunded amount (only ever grows, whatever order events arrive in)."""
    _lock_intent(conn, intent_id)
    conn.execute(
        """INSERT INTO payment_refunds (stripe_charge_id, stripe_payment_intent_id, amount_cents,
                                        amount_refunded_cents)
           VALUES (%(ch)s, %(pi)s, %(a)s, %(r)s)
           ON CONFLICT (stripe_charge_id) DO UPDATE
           SET amount_refunded_cents = greatest(payment_refunds.amount_refunded_cents, EXCLUDED.amount_refunded_cents),
               updated_at = now()""",
        {"ch": charge_id, "pi": intent_id, "a": amount_cents, "r": refunded_cents},
    )


def record_dispute(
    conn: Conn,
    *,
    dispute_id: str,
    intent_id: str,
    charge_id: str | None,
    amount_cents: int,
    status: str,
    closed: bool,
) -> None:
    """Record a dispute's state; once closed it stays closed (a late `created` event cannot reopen it)."""
    _lock_intent(conn, intent_id)
    conn.execute(
        """INSERT INTO payment_disputes (stripe_dispute_id, stripe_payment_intent_id, stripe_charge_id,
                                         amount_cents, status, closed)
           VALUES (%(d)s, %(pi)s, %(ch)s, %(a)s, %(s)s, %(c)s)
           ON CONFLICT (stripe_dispute_id) DO UPDATE
           SET status = CASE WHEN payment_disputes.closed THEN payment_disputes.status ELSE EXCLUDED.status END,
               closed = payment_disputes.closed OR EXCLUDED.closed,
               amount_cents = CASE WHEN payment_disputes.closed THEN payment_disputes.amount_cents
                                   ELSE EXCLUDED.amount_cents END,
               updated_at = now()""",
        {"d": dispute_id, "pi": intent_id, "ch": charge_id, "a": amount_cents, "s": status, "c": closed},
    )


def tokens_for_cents(tokens: int, amount_cents: int, cents: int) -> int:
    """Tokens a refund or dispute of `cents` takes back: ceil(tokens * cents / amount_cents), at most `tokens`."""
    if cents <= 0:
        return 0
    if amount_cents <= 0 or cents >= amount_cents:
        return tokens
    return min(tokens, -(-tokens * cents // amount_cents))


def sync_payment(
    conn: Conn, intent_id: str, *, cause: SyncCause, event_id: str | None = None
) -> SyncResult | None:
    """Move the ledger to what this payment should give the user now; None when nothing changed."""
    _lock_intent(conn, intent_id)
    pay = conn.execute(
        """SELECT id, user_id, tokens, amount_cents, status, tokens_applied, sync_version
           FROM payments WHERE stripe_payment_intent_id = %(pi)s""",
        {"pi": intent_id},
    ).fetchone()
    if pay is None:
        return None  # facts are kept; the payment's own event will sync them
    facts = conn.execute(
        """SELECT (SELECT coalesce(sum(amount_refunded_cents), 0) FROM payment_refunds
                    WHERE stripe_payment_intent_id = %(pi)s) AS refunded,
                  (SELECT coalesce(array_agg(amount_cents), '{}') FROM payment_disputes
                    WHERE stripe_payment_intent_id = %(pi)s AND NOT (closed AND status = ANY(%(released)s)))
                      AS disputes""",
        {"pi": intent_id, "released": sorted(DISPUTE_RELEASED)},
    ).fetchone()
    assert facts is not None
    tokens, amount = int(pay["tokens"]), int(pay["amount_cents"])
    target = 0
    if pay["status"] == "succeeded":
        held = tokens_for_cents(tokens, amount, int(facts["refunded"]))
        held += sum(tokens_for_cents(tokens, amount, int(c)) for c in facts["disputes"])
        target = max(0, tokens - held)
    delta = target - int(pay["tokens_applied"])
    if delta == 0:
        return None
    purchase = clawbacks.Purchase(pay["id"], pay["user_id"], intent_id, int(pay["sync_version"]) + 1)
    metadata = {"stripe_event": event_id, "payment_id": str(pay["id"])}
    if delta > 0:
        kind = "dispute_reversal" if cause == "dispute_closed" else "purchase"
        moved = clawbacks.give_back(conn, purchase, delta, kind=kind, metadata=metadata)
    else:
        kind = "dispute" if cause.startswith("dispute") else "refund"
        moved = clawbacks.take_back(conn, purchase, -delta, kind=kind, metadata=metadata)
    conn.execute(
        """UPDATE payments SET tokens_applied = %(t)s, sync_version = %(v)s, updated_at = now()
           WHERE stripe_payment_intent_id = %(pi)s""",
        {"t": target, "v": purchase.version, "pi": intent_id},
    )
    _announce(conn, purchase, moved, kind)
    return SyncResult(pay["user_id"], delta, moved.fan_balance)


def _announce(conn: Conn, purchase: clawbacks.Purchase, moved: clawbacks.Moved, kind: str) -> None:
    """balance:update for everyone the change touched; Sentry hears of every new debt."""
    if moved.fan is not None:
        fan = moved.fan
        realtime.publish_balance(
            conn, purchase.user_id, balance=fan.balance_after, delta=fan.balance_change, reason=kind
        )
    debts = [(purchase.user_id, moved.fan)] if moved.fan is not None else []
    for user_id, entry in moved.others:
        debts.append((user_id, entry))
        if user_id != ledger.PLATFORM_USER_ID:
            realtime.publish_balance(
                conn, user_id, balance=entry.balance_after, delta=entry.balance_change, reason=entry.kind
            )
    for user_id, entry in debts:
        if entry.debt_change > 0:
            observability.capture_message(
                "token clawback left a debt",
                user_id=str(user_id),
                intent=purchase.intent_id,
                kind=entry.kind,
                debt=entry.debt_after,
            )


def _lock_intent(conn: Conn, intent_id: str) -> None:
    """Serialise everything that touches one intent, always before its rows (so two events cannot deadlock)."""
    advisory_lock(conn, f"payment:{intent_id}")


def advisory_lock(conn: Conn, name: str) -> None:
    digest = hashlib.sha256(name.encode()).digest()
    conn.execute(
        "SELECT pg_advisory_xact_lock(%(k)s::bigint)", {"k": int.from_bytes(digest[:8], "big", signed=True)}
    )
