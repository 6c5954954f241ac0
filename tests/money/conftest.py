"""Money test helpers: Stripe-signed webhook events, fee settings, and a books-balance check."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lib import config, db, ledger
from tests.conftest import TEST_ENV

WEBHOOK_SECRET = TEST_ENV["STRIPE_WEBHOOK_SECRET"]
CONNECT_SECRET = TEST_ENV["STRIPE_CONNECT_WEBHOOK_SECRET"]


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header exactly as Stripe computes it: v1 = HMAC-SHA256(secret, f"{t}.{payload}")."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None, **extra: Any) -> bytes:
    """A Stripe event body."""
    body = {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
        **extra,
    }
    return json.dumps(body).encode()


def intent_succeeded(
    pi: str, user_id: uuid.UUID | str, tokens: int, amount: int = 500, *, event_id: str | None = None
) -> bytes:
    """payment_intent.succeeded for a token purchase."""
    obj = {
        "id": pi,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount,
        "currency": "usd",
        "status": "succeeded",
        "metadata": {"user_id": str(user_id), "tokens": str(tokens)},
    }
    return event("payment_intent.succeeded", obj, event_id=event_id)


def charge_refunded(pi: str, refunded: int, amount: int = 500, *, charge: str | None = None) -> bytes:
    """charge.refunded with the cumulative amount refunded."""
    obj = {
        "id": charge or f"ch_{pi[3:]}",
        "object": "charge",
        "amount": amount,
        "amount_refunded": refunded,
        "refunded": refunded >= amount,
        "payment_intent": pi,
    }
    return event("charge.refunded", obj)


def dispute(kind: str, dispute_id: str, pi: str, amount: int = 500, status: str = "needs_response") -> bytes:
    """charge.dispute.created / charge.dispute.closed."""
    obj = {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "charge": f"ch_{pi[3:]}",
        "payment_intent": pi,
        "status": status,
    }
    return event(f"charge.dispute.{kind}", obj)


def books(conn: db.Conn | None = None) -> ledger.Report:
    """The reconciliation report (in its own transaction unless given one)."""
    if conn is not None:
        return ledger.reconcile(conn)
    with db.transaction() as c:
        return ledger.reconcile(c)


def assert_books_balance() -> ledger.Report:
    """Every balance equals its ledger sum, chains hold, tokens are conserved."""
    report = books()
    assert report.ok, report
    return report


@pytest.fixture
def set_env() -> Iterator[Callable[[str, str], None]]:
    """Repoint a setting for one test (settings and the pool are rebuilt, then restored)."""
    import os

    saved: dict[str, str | None] = {}

    def setter(name: str, value: str) -> None:
        saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value
        db.close_pool()
        config.reset()

    yield setter
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    db.close_pool()
    config.reset()
