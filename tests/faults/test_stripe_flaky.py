"""Stripe failing in front of localstripe: a 500 before the API ran, or an answer lost after it ran.

Every retry (the SDK's own, and the client's with the same Idempotency-Key) must carry the same Stripe
`Idempotency-Key`, so exactly one PaymentIntent exists and the pack is credited once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from lib import db
from localdev import stripe_standin
from tests.conftest import TEST_ENV, SetEnv
from tests.conftest import TestUser as Person
from tests.faults import servers
from tests.faults.books import assert_books_balance, balance, count
from tests.faults.conftest import Timed, call, record

PURCHASE = "tokens/purchase.py"
SECRET_KEY = TEST_ENV["STRIPE_SECRET_KEY"]


@pytest.fixture(scope="module")
def localstripe() -> Iterator[stripe_standin.LocalStripe]:
    """One localstripe for the module (its store is flushed before each test)."""
    with stripe_standin.running() as ls:
        yield ls


@pytest.fixture
def upstream(localstripe: stripe_standin.LocalStripe) -> str:
    """localstripe, emptied."""
    localstripe.flush()
    return localstripe.url


def card(upstream: str) -> str:
    """A payment method for 4242... created straight on localstripe (not through the failing stand-in)."""
    r = httpx.post(
        f"{upstream}/v1/payment_methods",
        data={
            "type": "card",
            "card[number]": "4242424242424242",
            "card[exp_month]": "12",
            "card[exp_year]": "2034",
            "card[cvc]": "123",
        },
        auth=(SECRET_KEY, ""),
        timeout=10,
    )
    r.raise_for_status()
    return str(r.json()["id"])


def intents_at_stripe(upstream: str) -> list[dict[str, object]]:
    """Every PaymentIntent localstripe holds."""
    r = httpx.get(f"{upstream}/v1/payment_intents", params={"limit": 100}, auth=(SECRET_KEY, ""), timeout=10)
    r.raise_for_status()
    return list(r.json()["data"])


def purchase(fan: Person, pm: str, key: str) -> Timed:
    """POST /tokens/purchase for the 200-token pack with an Idempotency-Key."""
    return call(
        PURCHASE,
        "POST",
        "/api/tokens/purchase",
        json={"tokenAmount": 200, "paymentMethodId": pm},
        headers={**fan.headers, "Idempotency-Key": key},
    )


def assert_one_intent_credited_once(
    fan: Person, upstream: str, stand_in: servers.RunningServer, intent_id: str
) -> None:
    creates = servers.intent_creates(stand_in.seen)
    keys = {s.headers.get("idempotency-key") for s in creates}
    assert len(keys) == 1 and None not in keys, [
        (s.action, s.headers.get("idempotency-key")) for s in creates
    ]
    assert next(iter(keys)) == f"purchase:{fan.id}:{CLIENT_KEY}"
    at_stripe = intents_at_stripe(upstream)
    assert [i["id"] for i in at_stripe] == [intent_id], at_stripe
    with db.transaction() as conn:
        rows = conn.execute("SELECT stripe_payment_intent_id, tokens_applied FROM payments").fetchall()
    assert rows == [{"stripe_payment_intent_id": intent_id, "tokens_applied": 200}]
    assert balance(fan.id) == 300
    assert count("token_transactions", "user_id = %(u)s AND type = 'purchase'", {"u": fan.id}) == 1
    assert_books_balance()


CLIENT_KEY = "buy-200-" + uuid.uuid4().hex[:8]


@pytest.mark.parametrize(
    "actions",
    [["500"], ["drop"], ["500", "drop"]],
    ids=["500-then-pass", "answer-lost-then-replayed", "500-then-answer-lost"],
)
def test_the_sdk_retry_reuses_the_key_and_one_intent_is_created(
    fan: Person, upstream: str, set_env: SetEnv, actions: list[str]
) -> None:
    pm = card(upstream)
    with servers.stripe_in_front_of(upstream, actions) as stand_in:
        set_env(STRIPE_API_BASE=stand_in.url)
        t = purchase(fan, pm, CLIENT_KEY)
        assert t.status == 200, t.response.text
        out = t.json()
        assert out["success"] is True and out["balance"] == 300
        # The client never saw the answer either: it retries with its key and gets the recorded one back.
        again = purchase(fan, pm, CLIENT_KEY)
        assert again.status == 200 and again.json() == out
        assert again.response.headers.get("Idempotency-Replayed") == "true"
    creates = servers.intent_creates(stand_in.seen)
    assert [s.action for s in creates] == [*actions, "replayed" if actions[-1] == "drop" else "pass"]
    record(
        f"stripe {'+'.join(actions)}: purchase 200 in {t.ms()} after {len(creates)} create attempts; client replay {again.ms()}"
    )
    assert_one_intent_credited_once(fan, upstream, stand_in, out["paymentIntent"]["id"])


def test_a_stripe_outage_is_503_and_the_clients_retry_reuses_the_key(
    fan: Person, upstream: str, set_env: SetEnv
) -> None:
    pm = card(upstream)
    with servers.stripe_in_front_of(upstream, ["500", "500", "500"]) as stand_in:
        set_env(STRIPE_API_BASE=stand_in.url)
        failed = purchase(fan, pm, CLIENT_KEY)
        assert failed.status == 503 and failed.json()["code"] == "PAYMENTS_UNAVAILABLE", failed.response.text
        assert count("payments") == 0 and count("idempotency_keys") == 0 and balance(fan.id) == 100
        t = purchase(fan, pm, CLIENT_KEY)
        assert t.status == 200 and t.json()["balance"] == 300, t.response.text
    creates = servers.intent_creates(stand_in.seen)
    assert [s.action for s in creates] == ["500", "500", "500", "pass"]
    record(f"stripe 3x500: 503 in {failed.ms()} (SDK retried twice), client retry 200 in {t.ms()}")
    assert_one_intent_credited_once(fan, upstream, stand_in, t.json()["paymentIntent"]["id"])
