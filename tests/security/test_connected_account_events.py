"""Stripe events from a connected account never move a token: purchases, refunds and disputes are platform-only."""

from __future__ import annotations

import json
import uuid

import pytest

from lib import db, ledger
from tests.conftest import MakeUser
from tests.money.conftest import (
    CONNECT_SECRET,
    WEBHOOK_SECRET,
    assert_books_balance,
    charge_refunded,
    dispute,
    event,
    intent_succeeded,
    sign,
)
from tests.support.functions import client

WEBHOOK = "payments/webhook.py"
ACCOUNT = "acct_1CreatorOwnShop"


def from_connected_account(payload: bytes, account: str = ACCOUNT) -> bytes:
    """The same event as it happened on a connected account: Stripe adds the top-level `account`."""
    return json.dumps({**json.loads(payload), "account": account}).encode()


def deliver(payload: bytes, secret: str) -> dict[str, object]:
    """POST a correctly signed event; the acknowledgement body (200 expected)."""
    headers = {"Stripe-Signature": sign(payload, secret), "Content-Type": "application/json"}
    r = client(WEBHOOK).post("/api/payments/webhook", content=payload, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def balance_of(user_id: uuid.UUID) -> int:
    with db.transaction() as conn:
        return ledger.balance(conn, user_id)


def new_pi() -> str:
    return f"pi_{uuid.uuid4().hex[:24]}"


@pytest.mark.parametrize(
    "secret", [CONNECT_SECRET, WEBHOOK_SECRET], ids=["connect-secret", "platform-secret"]
)
def test_a_connected_accounts_payment_intent_succeeded_credits_no_tokens(
    make_user: MakeUser, secret: str
) -> None:
    # A creator's own Stripe account takes a payment whose metadata names a fan and a token count.
    fan, pi = make_user(), new_pi()
    ack = deliver(from_connected_account(intent_succeeded(pi, fan.id, 5000, 500)), secret)
    assert ack == {"received": True, "type": "payment_intent.succeeded", "duplicate": False, "handled": False}
    assert balance_of(fan.id) == 0
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) AS n FROM payments").fetchone() == {"n": 0}
        assert conn.execute("SELECT count(*) AS n FROM token_transactions").fetchone() == {"n": 0}
        seen = conn.execute(
            "SELECT account FROM stripe_events WHERE type = 'payment_intent.succeeded'"
        ).fetchone()
    assert seen == {"account": ACCOUNT}  # recorded (so a redelivery is a duplicate), never acted on
    assert_books_balance()


def test_connected_account_refunds_and_disputes_never_touch_a_platform_purchase(make_user: MakeUser) -> None:
    fan, pi = make_user(), new_pi()
    assert deliver(intent_succeeded(pi, fan.id, 50, 500), WEBHOOK_SECRET)["handled"] is True
    assert balance_of(fan.id) == 50
    for payload in (
        charge_refunded(pi, 500),
        dispute("created", "dp_connected_1", pi),
        dispute("closed", "dp_connected_1", pi, status="lost"),
        event("payment_intent.canceled", {"id": pi, "object": "payment_intent", "status": "canceled"}),
    ):
        ack = deliver(from_connected_account(payload), CONNECT_SECRET)
        assert ack["handled"] is False, ack
    assert balance_of(fan.id) == 50
    with db.transaction() as conn:
        pay = conn.execute(
            "SELECT status, tokens_applied FROM payments WHERE stripe_payment_intent_id = %s", (pi,)
        ).fetchone()
        assert conn.execute("SELECT count(*) AS n FROM token_transactions").fetchone() == {"n": 1}
    assert pay == {"status": "succeeded", "tokens_applied": 50}
    assert_books_balance()


def test_the_same_platform_events_still_move_tokens(make_user: MakeUser) -> None:
    # The control: without `account` the identical refund takes the tokens back.
    fan, pi = make_user(), new_pi()
    deliver(intent_succeeded(pi, fan.id, 50, 500), WEBHOOK_SECRET)
    assert deliver(charge_refunded(pi, 500), WEBHOOK_SECRET)["handled"] is True
    assert balance_of(fan.id) == 0


def test_connected_account_events_the_payouts_code_owns_are_still_handled(make_user: MakeUser) -> None:
    account = {"id": ACCOUNT, "object": "account", "payouts_enabled": True, "details_submitted": True}
    assert deliver(event("account.updated", account, account=ACCOUNT), CONNECT_SECRET)["handled"] is True
    payout = {"id": "po_1", "object": "payout", "amount": 100, "status": "paid"}
    assert deliver(event("payout.paid", payout, account=ACCOUNT), CONNECT_SECRET)["handled"] is True
