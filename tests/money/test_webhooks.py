"""POST /payments/webhook: signatures, once-only crediting, refunds, disputes, transient failures."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from fastapi.testclient import TestClient

from lib import db, ledger, stripe_webhooks
from lib.payments import settlement
from lib.payments import webhooks as payment_events
from lib.payouts import webhooks as payout_events
from tests.conftest import MakeUser
from tests.money.conftest import (
    CONNECT_SECRET,
    assert_books_balance,
    charge_refunded,
    dispute,
    event,
    intent_succeeded,
    sign,
)
from tests.support.functions import client

WEBHOOK = "payments/webhook.py"


def deliver(
    payload: bytes,
    *,
    path: str = "/api/payments/webhook",
    c: TestClient | None = None,
    secret: str | None = None,
    timestamp: int | None = None,
) -> int:
    """POST a signed event the way Stripe does; returns the status code."""
    header = sign(payload, secret, timestamp) if secret else sign(payload, timestamp=timestamp)
    headers = {"Stripe-Signature": header, "Content-Type": "application/json"}
    return (c or client(WEBHOOK)).post(path, content=payload, headers=headers).status_code


def balance_of(user_id: uuid.UUID) -> int:
    with db.transaction() as conn:
        return ledger.balance(conn, user_id)


def new_pi() -> str:
    return f"pi_{uuid.uuid4().hex[:24]}"


def test_payment_intent_succeeded_credits_the_user_and_tracks_the_payment(make_user: MakeUser) -> None:
    fan, pi = make_user(), new_pi()
    assert deliver(intent_succeeded(pi, fan.id, 50, 500)) == 200
    assert balance_of(fan.id) == 50
    with db.transaction() as conn:
        pay = conn.execute("SELECT * FROM payments WHERE stripe_payment_intent_id = %s", (pi,)).fetchone()
        row = conn.execute(
            "SELECT type, reference_type, reference_id FROM token_transactions WHERE user_id = %s", (fan.id,)
        ).fetchone()
    assert pay is not None and (pay["status"], pay["tokens"], pay["tokens_applied"]) == ("succeeded", 50, 50)
    assert row == {"type": "purchase", "reference_type": "stripe_payment_intent", "reference_id": pi}
    assert_books_balance()


def test_the_alias_path_and_the_v1_path_answer_too(make_user: MakeUser) -> None:
    fan = make_user()
    assert deliver(intent_succeeded(new_pi(), fan.id, 50), path="/api/webhooks/stripe") == 200
    assert deliver(intent_succeeded(new_pi(), fan.id, 50), path="/api/v1/payments/webhook") == 200
    assert balance_of(fan.id) == 100


def test_same_event_twenty_times_in_sequence_credits_once(make_user: MakeUser) -> None:
    fan = make_user()
    payload = intent_succeeded(new_pi(), fan.id, 200, 1900)
    assert [deliver(payload) for _ in range(20)] == [200] * 20
    assert balance_of(fan.id) == 200
    assert_books_balance()


def test_same_event_twenty_times_in_parallel_credits_once(make_user: MakeUser) -> None:
    fan = make_user()
    payload = intent_succeeded(new_pi(), fan.id, 200, 1900)
    start = threading.Barrier(20, timeout=20)

    def one(_: int) -> int:
        start.wait()
        with TestClient(client(WEBHOOK).app, raise_server_exceptions=False) as c:
            return deliver(payload, c=c)

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(one, range(20), timeout=60))
    assert codes == [200] * 20
    assert balance_of(fan.id) == 200
    assert_books_balance()


def test_same_intent_under_two_event_ids_credits_once(make_user: MakeUser) -> None:
    fan, pi = make_user(), new_pi()
    assert deliver(intent_succeeded(pi, fan.id, 50, event_id="evt_first")) == 200
    assert deliver(intent_succeeded(pi, fan.id, 50, event_id="evt_second")) == 200
    assert balance_of(fan.id) == 50


def test_full_refund_takes_the_tokens_back(make_user: MakeUser) -> None:
    fan, pi = make_user(), new_pi()
    deliver(intent_succeeded(pi, fan.id, 50, 500))
    assert deliver(charge_refunded(pi, 500, 500)) == 200
    assert balance_of(fan.id) == 0
    assert_books_balance()


def test_partial_refunds_are_cumulative_and_rounded_up(make_user: MakeUser) -> None:
    fan, pi = make_user(), new_pi()
    deliver(intent_succeeded(pi, fan.id, 433, 3900))
    assert deliver(charge_refunded(pi, 1000, 3900)) == 200  # ceil(433 * 1000 / 3900) = 112
    assert balance_of(fan.id) == 433 - 112
    assert deliver(charge_refunded(pi, 1000, 3900)) == 200  # a new event id, same cumulative amount: nothing
    assert balance_of(fan.id) == 433 - 112
    assert deliver(charge_refunded(pi, 3900, 3900)) == 200
    assert balance_of(fan.id) == 0
    assert deliver(charge_refunded(pi, 1000, 3900)) == 200  # late, smaller: refunds never shrink
    assert balance_of(fan.id) == 0
    assert_books_balance()


def test_refund_of_spent_tokens_is_taken_back_from_the_creator_they_paid(make_user: MakeUser) -> None:
    fan, creator, pi = make_user(), make_user(role="creator"), new_pi()
    deliver(intent_succeeded(pi, fan.id, 50, 500))
    with db.transaction() as conn:
        ledger.transfer(
            conn,
            from_user=fan.id,
            to_user=creator.id,
            amount=40,
            kind="tip",
            reference_type="t",
            reference_id="t",
            idempotency_key="spent",
        )
    deliver(charge_refunded(pi, 500, 500))
    with db.transaction() as conn:
        assert (ledger.balance(conn, fan.id), ledger.debt(conn, fan.id)) == (0, 0)
        assert (ledger.balance(conn, creator.id), ledger.debt(conn, creator.id)) == (0, 0)
    report = assert_books_balance()
    assert report.balances_total - report.debts_total == report.payments_total == 0


def test_refund_of_tokens_no_creator_received_becomes_debt_that_later_credits_pay_first(
    make_user: MakeUser,
) -> None:
    fan, pi = make_user(), new_pi()
    deliver(intent_succeeded(pi, fan.id, 50, 500))
    with db.transaction() as conn:  # tokens that left without a recipient (an admin correction)
        ledger.debit(
            conn,
            user_id=fan.id,
            amount=40,
            kind="adjustment",
            reference_type="t",
            reference_id="t",
            idempotency_key="corrected",
        )
    deliver(charge_refunded(pi, 500, 500))
    with db.transaction() as conn:
        assert (ledger.balance(conn, fan.id), ledger.debt(conn, fan.id)) == (0, 40)
    deliver(intent_succeeded(new_pi(), fan.id, 50, 500))
    with db.transaction() as conn:
        assert (ledger.balance(conn, fan.id), ledger.debt(conn, fan.id)) == (10, 0)
    report = assert_books_balance()
    assert report.balances_total - report.debts_total == report.payments_total + report.outside_total == 10


def test_refund_before_success_credits_only_what_is_left(make_user: MakeUser) -> None:
    fan, pi = make_user(), new_pi()
    assert deliver(charge_refunded(pi, 500, 500)) == 200
    assert balance_of(fan.id) == 0
    assert deliver(intent_succeeded(pi, fan.id, 50, 500)) == 200
    assert balance_of(fan.id) == 0
    other = new_pi()
    deliver(charge_refunded(other, 100, 500))
    deliver(intent_succeeded(other, fan.id, 50, 500))
    assert balance_of(fan.id) == 40
    with db.transaction() as conn:
        assert ledger.debt(conn, fan.id) == 0
    assert_books_balance()


def test_dispute_claws_back_and_a_won_dispute_reinstates(make_user: MakeUser) -> None:
    fan, pi = make_user(), new_pi()
    deliver(intent_succeeded(pi, fan.id, 50, 500))
    assert deliver(dispute("created", "dp_1", pi)) == 200
    assert balance_of(fan.id) == 0
    assert deliver(dispute("closed", "dp_1", pi, status="won")) == 200
    assert balance_of(fan.id) == 50
    assert deliver(dispute("created", "dp_1", pi)) == 200  # late `created`: a closed dispute stays closed
    assert balance_of(fan.id) == 50
    with db.transaction() as conn:
        kinds = [
            r["type"]
            for r in conn.execute(
                "SELECT type FROM token_transactions WHERE user_id = %s ORDER BY seq", (fan.id,)
            )
        ]
    assert kinds == ["purchase", "dispute", "dispute_reversal"]
    assert_books_balance()


def test_a_lost_dispute_keeps_the_tokens_clawed_back(make_user: MakeUser) -> None:
    fan, pi = make_user(), new_pi()
    deliver(intent_succeeded(pi, fan.id, 50, 500))
    deliver(dispute("created", "dp_2", pi))
    deliver(dispute("closed", "dp_2", pi, status="lost"))
    assert balance_of(fan.id) == 0
    assert_books_balance()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Stripe-Signature": "t=1,v1=deadbeef"},
        {"Stripe-Signature": "garbage"},
    ],
    ids=["unsigned", "bad-signature", "malformed-header"],
)
def test_unsigned_or_badly_signed_bodies_are_400_and_credit_nothing(
    make_user: MakeUser, headers: dict[str, str]
) -> None:
    fan = make_user()
    r = client(WEBHOOK).post(
        "/api/payments/webhook", content=intent_succeeded(new_pi(), fan.id, 50), headers=headers
    )
    assert r.status_code == 400 and r.json()["code"] == "INVALID_SIGNATURE"
    assert balance_of(fan.id) == 0


def test_wrong_secret_stale_timestamp_and_tampered_body_are_refused(make_user: MakeUser) -> None:
    fan = make_user()
    payload = intent_succeeded(new_pi(), fan.id, 50)
    assert deliver(payload, secret="whsec_someone_else") == 400
    assert deliver(payload, timestamp=int(time.time()) - 301) == 400
    header = sign(payload)
    tampered = payload.replace(b'"tokens": "50"', b'"tokens": "5000"')
    r = client(WEBHOOK).post("/api/payments/webhook", content=tampered, headers={"Stripe-Signature": header})
    assert r.status_code == 400
    assert balance_of(fan.id) == 0
    assert deliver(payload, timestamp=int(time.time()) - 290) == 200  # inside the 300 s tolerance
    assert balance_of(fan.id) == 50


def test_connect_secret_is_accepted_and_unknown_events_are_acknowledged(make_user: MakeUser) -> None:
    payload = event("customer.created", {"id": "cus_1", "object": "customer"}, account="acct_1")
    r = client(WEBHOOK).post(
        "/api/payments/webhook", content=payload, headers={"Stripe-Signature": sign(payload, CONNECT_SECRET)}
    )
    assert r.status_code == 200 and r.json() == {
        "received": True,
        "type": "customer.created",
        "duplicate": False,
        "handled": False,
    }
    # Connect's own events have handlers (lib/payouts); an account that is not ours is acknowledged.
    payload = event("account.updated", {"id": "acct_1", "object": "account"}, account="acct_1")
    r = client(WEBHOOK).post(
        "/api/payments/webhook", content=payload, headers={"Stripe-Signature": sign(payload, CONNECT_SECRET)}
    )
    assert r.status_code == 200 and r.json()["handled"] is True


def test_dispatch_table_names_every_handler_and_resolves_prefixes() -> None:
    tables = (stripe_webhooks.HANDLERS, stripe_webhooks.CONNECTED_ACCOUNT_HANDLERS)
    # An explicit table: every entry is a function imported by lib/stripe_webhooks, none a name looked up later.
    for table in tables:
        assert all(callable(handler) and not isinstance(handler, str) for handler in table.values())
    assert stripe_webhooks.handler_for("payout.paid") is payout_events.payout_event
    assert stripe_webhooks.handler_for("transfer.reversed") is payout_events.transfer_event
    assert stripe_webhooks.handler_for("charge.refunded") is payment_events.charge_refunded
    assert stripe_webhooks.handler_for("charge.dispute.created") is payment_events.dispute_opened
    assert stripe_webhooks.handler_for("customer.created") is None
    # A connected account's own charges never reach the token handlers; its account and payouts do.
    connected = stripe_webhooks.CONNECTED_ACCOUNT_HANDLERS
    assert stripe_webhooks.handler_for("charge.refunded", connected) is None
    assert stripe_webhooks.handler_for("payout.failed", connected) is payout_events.payout_event


def test_a_failure_midway_rolls_everything_back_and_stripe_retry_credits_once(
    make_user: MakeUser, set_env: Callable[[str, str], None]
) -> None:
    fan, pi = make_user(), new_pi()
    payload = intent_succeeded(pi, fan.id, 50)
    set_env("DB_STATEMENT_TIMEOUT_MS", "300")
    # Another transaction holds the user's row, so the credit times out after the event id was recorded.
    with psycopg.connect(db.get_settings().database_url) as blocker:
        blocker.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (fan.id,))
        assert deliver(payload) >= 500
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) AS n FROM stripe_events").fetchone() == {"n": 0}
        assert conn.execute("SELECT count(*) AS n FROM payments").fetchone() == {"n": 0}
    assert balance_of(fan.id) == 0
    assert deliver(payload) == 200
    assert deliver(payload) == 200
    assert balance_of(fan.id) == 50
    assert_books_balance()


def test_database_down_answers_503_so_stripe_retries(
    make_user: MakeUser, set_env: Callable[[str, str], None]
) -> None:
    fan = make_user()
    payload = intent_succeeded(new_pi(), fan.id, 50)
    good = db.get_settings().database_url
    set_env("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nothing")
    assert deliver(payload) == 503
    set_env("DATABASE_URL", good)
    assert deliver(payload) == 200
    assert balance_of(fan.id) == 50


def test_sync_payment_is_a_no_op_when_nothing_changed(make_user: MakeUser) -> None:
    fan, pi = make_user(), new_pi()
    deliver(intent_succeeded(pi, fan.id, 50))
    with db.transaction() as conn:
        assert settlement.sync_payment(conn, pi, cause="purchase") is None
        assert settlement.sync_payment(conn, "pi_unknown", cause="refund") is None


def test_different_events_for_one_intent_in_parallel_neither_deadlock_nor_double_count(
    make_user: MakeUser,
) -> None:
    fan, pi = make_user(), new_pi()
    payloads = [
        intent_succeeded(pi, fan.id, 433, 3900),
        intent_succeeded(pi, fan.id, 433, 3900),
        charge_refunded(pi, 1000, 3900),
        dispute("created", "dp_par", pi, 1000),
    ] * 3
    start = threading.Barrier(len(payloads), timeout=20)

    def one(payload: bytes) -> int:
        start.wait()
        with TestClient(client(WEBHOOK).app, raise_server_exceptions=False) as c:
            return deliver(payload, c=c)

    with ThreadPoolExecutor(len(payloads)) as pool:
        codes = list(pool.map(one, payloads, timeout=60))
    assert codes == [200] * len(payloads)
    assert (
        balance_of(fan.id) == 433 - 112 - 112
    )  # the refund and the dispute each hold back ceil(433 * 1000 / 3900)
    assert_books_balance()
