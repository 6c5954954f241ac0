"""What fault tests send and check: Stripe-signed webhook bodies, and reads of the books."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from uuid import UUID

from lib import db, ledger
from tests.conftest import TEST_ENV

WEBHOOK_SECRET = TEST_ENV["STRIPE_WEBHOOK_SECRET"]
WEBHOOK = "payments/webhook.py"
WEBHOOK_PATH = "/api/payments/webhook"
PACKS: list[tuple[int, int]] = [(50, 500), (200, 1900), (433, 3900), (812, 6900)]


def signed(payload: bytes) -> dict[str, str]:
    """Stripe's headers for `payload`: Stripe-Signature v1 = HMAC-SHA256(secret, f"{t}.{payload}")."""
    t = int(time.time())
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={mac}", "Content-Type": "application/json"}


def stripe_event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    """A Stripe event body."""
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": obj},
        }
    ).encode()


def intent_succeeded(pi: str, user_id: UUID, tokens: int, cents: int, event_id: str | None = None) -> bytes:
    """payment_intent.succeeded for a token pack, with the metadata the purchase route sets."""
    obj = {
        "id": pi,
        "object": "payment_intent",
        "amount": cents,
        "amount_received": cents,
        "currency": "usd",
        "status": "succeeded",
        "metadata": {"user_id": str(user_id), "tokens": str(tokens)},
    }
    return stripe_event("payment_intent.succeeded", obj, event_id)


def charge_refunded(pi: str, refunded_cents: int, cents: int) -> bytes:
    """charge.refunded with the cumulative amount refunded."""
    obj = {
        "id": f"ch_{pi[3:]}",
        "object": "charge",
        "amount": cents,
        "amount_refunded": refunded_cents,
        "refunded": refunded_cents >= cents,
        "payment_intent": pi,
    }
    return stripe_event("charge.refunded", obj)


def dispute(kind: str, dispute_id: str, pi: str, cents: int, status: str = "needs_response") -> bytes:
    """charge.dispute.created / charge.dispute.closed."""
    obj = {
        "id": dispute_id,
        "object": "dispute",
        "amount": cents,
        "charge": f"ch_{pi[3:]}",
        "payment_intent": pi,
        "status": status,
    }
    return stripe_event(f"charge.dispute.{kind}", obj)


def new_pi() -> str:
    """A fresh PaymentIntent id."""
    return f"pi_{uuid.uuid4().hex[:24]}"


def balance(user_id: UUID) -> int:
    """A user's cached balance."""
    with db.transaction() as conn:
        return ledger.balance(conn, user_id)


def count(table: str, where: str = "true", params: dict[str, Any] | None = None) -> int:
    """Rows in `table` matching `where` (test SQL over our own constant table names)."""
    with db.transaction() as conn:
        row = conn.execute(f"SELECT count(*) AS n FROM {table} WHERE {where}", params).fetchone()
    assert row is not None
    return int(row["n"])


def assert_books_balance() -> ledger.Report:
    """Each balance and debt equals its ledger sum, balance_after chains, tokens are conserved."""
    with db.transaction() as conn:
        report = ledger.reconcile(conn)
        negative = conn.execute(
            "SELECT id, token_balance, token_debt FROM users WHERE token_balance < 0 OR token_debt < 0"
        ).fetchall()
    assert report.ok, report
    assert not negative, negative
    return report
