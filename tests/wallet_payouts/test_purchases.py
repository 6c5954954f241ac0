"""Token purchases as the frontend sends them: the card form, mobile checkout and the buy sheet; /wallet."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from lib import db, ledger
from lib.payments import purchases, stripe_api
from localdev import vercel_router
from localdev.stripe_connect_standin import ConnectStandin
from tests import conftest
from tests.conftest import MakeUser
from tests.money.conftest import WEBHOOK_SECRET, assert_books_balance, event, sign
from tests.support.functions import client

PURCHASE = "tokens/purchase.py"
CHECKOUT = "payments/create-checkout.py"
SESSION = "payments/create-checkout-session.py"
ORIGIN = "http://localhost:5173"  # the first exact ALLOWED_ORIGINS entry in tests


def card(number: str = "4242424242424242") -> str:
    """What stripe.createPaymentMethod gives the card form (through the stand-ins to localstripe)."""
    pm = stripe_api.client().v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    return str(pm.id)


def card_body(tokens: int, pm: str, **extra: Any) -> dict[str, Any]:
    """ImprovedTokenPurchase.js:129-138 (giftRecipientId is left out by JSON.stringify when undefined)."""
    return {"tokenAmount": tokens, "paymentMethodId": pm, "isGift": False, **extra}


def intents_created(stack: ConnectStandin) -> list[dict[str, Any]]:
    """PaymentIntent creations that reached Stripe (replays of an idempotency key are not new intents)."""
    return [
        r
        for r in stack.requests("/v1/payment_intents")
        if r["method"] == "POST" and r["path"] == "/v1/payment_intents" and not r["replayed"]
    ]


def balance(user: conftest.TestUser | uuid.UUID) -> int:
    with db.transaction() as conn:
        return ledger.balance(conn, user.id if isinstance(user, conftest.TestUser) else user)


def payments_of(user_id: uuid.UUID) -> list[dict[str, Any]]:
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT user_id, buyer_id, tokens, amount_cents, status, tokens_applied FROM payments WHERE user_id = %s",
            (user_id,),
        ).fetchall()
    return [dict(r) for r in rows]


# --- GET /wallet -------------------------------------------------------------------------------------------


def test_wallet_answers_what_the_wallet_pages_read(make_user: MakeUser) -> None:
    fan = make_user(balance=321)
    r = client("wallet.py").get("/api/v1/wallet", headers=fan.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    # WalletOptimized.js:227-233 and PayoutSettings.js:64-70 read tokens, then total_balance.
    assert body["tokens"] == body["total_balance"] == body["balance"] == 321
    assert all(type(body[k]) is int for k in ("tokens", "total_balance", "balance", "debt"))
    assert isinstance(body["usdEstimate"], float) and isinstance(body["tokenValue"], float)
    same = client("tokens/balance.py").get("/api/tokens/balance", headers=fan.headers).json()
    assert {k: body[k] for k in same} == same


# --- POST /tokens/purchase without an Idempotency-Key ------------------------------------------------------


def test_a_purchase_retried_three_times_without_a_key_charges_once(
    make_user: MakeUser, stripe_stack: ConnectStandin
) -> None:
    """fetchWithRetry resends the same body after a timeout or 5xx, with no Idempotency-Key."""
    fan = make_user()
    body = card_body(200, card())
    answers = [
        client(PURCHASE).post("/api/v1/tokens/purchase", json=body, headers=fan.headers) for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200], answers[0].text
    ids = {a.json()["paymentIntent"]["id"] for a in answers}
    assert len(ids) == 1 and all(a.json()["success"] is True for a in answers)
    assert len(intents_created(stripe_stack)) == 1  # Stripe saw one PaymentIntent; the retries were replays
    assert balance(fan) == 200
    assert [p["tokens_applied"] for p in payments_of(fan.id)] == [200]
    assert_books_balance()


def test_a_retry_after_stripe_acted_but_answered_too_late_charges_once(
    make_user: MakeUser, stripe_stack: ConnectStandin, set_env: Callable[[str, str], None]
) -> None:
    """Stripe made the intent, every answer came after our timeout: we answered 503 and kept nothing.

    The client's retry derives the same Stripe key, so Stripe answers with that first intent.
    """
    fan = make_user()
    body = card_body(200, card())
    set_env("STRIPE_TIMEOUT_S", "0.5")
    stripe_stack.slow_next(1.5, times=3, path="/v1/payment_intents")  # our call and the SDK's two retries
    first = client(PURCHASE).post("/api/tokens/purchase", json=body, headers=fan.headers)
    assert (first.status_code, first.json()["code"]) == (503, "PAYMENTS_UNAVAILABLE")
    assert payments_of(fan.id) == [] and balance(fan) == 0
    retry = client(PURCHASE).post("/api/tokens/purchase", json=body, headers=fan.headers)
    assert retry.status_code == 200 and retry.json()["success"] is True, retry.text
    assert (
        len(intents_created(stripe_stack)) == 1
    )  # the retry was answered with the intent made the first time
    assert balance(fan) == 200
    assert_books_balance()


def test_concurrent_retries_without_a_key_charge_once(
    make_user: MakeUser, stripe_stack: ConnectStandin
) -> None:
    """A retry sent while the first attempt is still running (the client timed out) waits for it."""
    fan = make_user()
    body = card_body(433, card())

    def send(_: int) -> httpx.Response:
        return client(PURCHASE).post("/api/tokens/purchase", json=body, headers=fan.headers)

    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(send, range(3)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["paymentIntent"]["id"] for a in answers}) == 1
    assert len(intents_created(stripe_stack)) == 1
    assert balance(fan) == 433
    assert_books_balance()


def test_a_retry_across_the_time_bucket_edge_reuses_the_first_key(
    make_user: MakeUser, stripe_stack: ConnectStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    fan = make_user()
    body = card_body(50, card())
    window = purchases.AUTO_KEY_WINDOW.total_seconds()
    real = time.time()
    if real % window < 2:  # the edge case below needs the real clock past its bucket's first seconds
        time.sleep(2)
        real = time.time()
    first = datetime.fromtimestamp(real, UTC)
    after_edge = datetime.fromtimestamp((real // window + 1) * window + 1, UTC)  # the next bucket
    monkeypatch.setattr(purchases, "now", lambda: first)
    a = client(PURCHASE).post("/api/tokens/purchase", json=body, headers=fan.headers)
    monkeypatch.setattr(purchases, "now", lambda: after_edge)
    b = client(PURCHASE).post("/api/tokens/purchase", json=body, headers=fan.headers)
    assert a.status_code == b.status_code == 200, (a.text, b.text)
    assert a.json()["paymentIntent"]["id"] == b.json()["paymentIntent"]["id"]
    keys = {
        r["idempotency_key"] for r in stripe_stack.requests("/v1/payment_intents") if r["method"] == "POST"
    }
    assert len(keys) == 1 and len(intents_created(stripe_stack)) == 1
    assert balance(fan) == 50


def test_two_clicks_are_two_purchases(make_user: MakeUser, stripe_stack: ConnectStandin) -> None:
    """The card form makes a new PaymentMethod per click, so a second click is a second purchase."""
    fan = make_user()
    for _ in range(2):
        r = client(PURCHASE).post("/api/tokens/purchase", json=card_body(50, card()), headers=fan.headers)
        assert r.status_code == 200
    assert len(intents_created(stripe_stack)) == 2 and balance(fan) == 100


# --- gifts ---------------------------------------------------------------------------------------------------


def test_a_gift_purchase_credits_the_recipient_not_the_buyer(
    make_user: MakeUser, stripe_stack: ConnectStandin
) -> None:
    buyer, friend = make_user(), make_user(role="creator")
    r = client(PURCHASE).post(
        "/api/tokens/purchase",
        json=card_body(200, card(), isGift=True, giftRecipientId=str(friend.id)),
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["success"] is True and out["balance"] == 0  # `balance` is the buyer's own
    assert out["gift"] == {"recipientId": str(friend.id), "tokens": 200}
    assert (balance(buyer), balance(friend)) == (0, 200)
    sent = intents_created(stripe_stack)[0]["params"]["metadata"]
    assert sent == {"user_id": str(friend.id), "tokens": "200", "buyer_id": str(buyer.id), "gift": "true"}
    assert payments_of(friend.id) == [
        {
            "user_id": friend.id,
            "buyer_id": buyer.id,
            "tokens": 200,
            "amount_cents": 1900,
            "status": "succeeded",
            "tokens_applied": 200,
        }
    ]
    # Stripe's own payment_intent.succeeded (the single credit path) changes nothing more.
    intent = stripe_api.client().v1.payment_intents.retrieve(out["paymentIntent"]["id"]).to_dict()
    payload = event("payment_intent.succeeded", intent)
    hook = client("payments/webhook.py").post(
        "/api/payments/webhook", content=payload, headers={"Stripe-Signature": sign(payload, WEBHOOK_SECRET)}
    )
    assert hook.status_code == 200
    assert (balance(buyer), balance(friend)) == (0, 200)
    assert_books_balance()


def test_a_gift_paid_later_is_credited_to_the_recipient_by_the_webhook(
    make_user: MakeUser, stripe_stack: ConnectStandin
) -> None:
    buyer, friend = make_user(), make_user()
    r = client(PURCHASE).post(
        "/api/tokens/purchase",
        json=card_body(50, card("4000002500003155"), isGift=True, giftRecipientId=str(friend.id)),
        headers=buyer.headers,
    )
    assert r.status_code == 200 and r.json()["success"] is False
    assert (balance(buyer), balance(friend)) == (0, 0)
    # The webhook carries the metadata we set: it credits whoever metadata.user_id names (the recipient).
    intent = {
        "id": r.json()["paymentIntent"]["id"],
        "object": "payment_intent",
        "amount": 500,
        "amount_received": 500,
        "currency": "usd",
        "status": "succeeded",
        "metadata": intents_created(stripe_stack)[0]["params"]["metadata"],
    }
    payload = event("payment_intent.succeeded", intent)
    hook = client("payments/webhook.py").post(
        "/api/payments/webhook", content=payload, headers={"Stripe-Signature": sign(payload, WEBHOOK_SECRET)}
    )
    assert hook.status_code == 200
    assert (balance(buyer), balance(friend)) == (0, 50)


@pytest.mark.parametrize(
    ("extra", "status", "code"),
    [
        ({"isGift": True}, 422, "GIFT_RECIPIENT_REQUIRED"),
        ({"isGift": True, "giftRecipientId": None}, 422, "GIFT_RECIPIENT_REQUIRED"),
        ({"isGift": False, "giftRecipientId": "SELF_OTHER"}, 422, "GIFT_RECIPIENT_WITHOUT_GIFT"),
        ({"isGift": True, "giftRecipientId": "SELF"}, 422, "GIFT_TO_SELF"),
        ({"isGift": True, "giftRecipientId": str(uuid.uuid4())}, 404, "GIFT_RECIPIENT_NOT_FOUND"),
        ({"isGift": True, "giftRecipientId": "not-a-uuid"}, 422, "VALIDATION_ERROR"),
        ({"isGift": "yes", "giftRecipientId": "SELF_OTHER"}, 422, "VALIDATION_ERROR"),
    ],
)
def test_a_half_specified_gift_is_refused_before_any_charge(
    make_user: MakeUser, connect: ConnectStandin, extra: dict[str, Any], status: int, code: str
) -> None:
    buyer, other = make_user(), make_user()
    swap = {"SELF": str(buyer.id), "SELF_OTHER": str(other.id)}
    body = card_body(
        50, "pm_card_visa", **{k: swap.get(v, v) if isinstance(v, str) else v for k, v in extra.items()}
    )
    r = client(PURCHASE).post("/api/tokens/purchase", json=body, headers=buyer.headers)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert connect.requests("/v1/payment_intents") == []
    assert (balance(buyer), balance(other)) == (0, 0)


# --- mobile checkout and the buy sheet -----------------------------------------------------------------------


def mobile_body(tokens: int, usd: float) -> dict[str, Any]:
    """MobileTokenPurchase.js:64-84 (`amount` is the pack's price * 100; JSON.stringify writes 4500, not 4500.0)."""
    amount = usd * 100
    return {
        "tokens": tokens,
        "amount": int(amount) if amount == int(amount) else amount,
        "success_url": f"{ORIGIN}/wallet?success=1",
        "cancel_url": f"{ORIGIN}/wallet?canceled=1",
    }


@pytest.mark.parametrize(("tokens", "usd"), [(100, 10), (500, 45), (1000, 80)])  # config/wallet-config.js
def test_mobile_checkout_body_is_accepted_and_answers_checkout_url(
    make_user: MakeUser, connect: ConnectStandin, tokens: int, usd: int
) -> None:
    fan = make_user()
    r = client(CHECKOUT).post(
        "/api/v1/payments/create-checkout", json=mobile_body(tokens, usd), headers=fan.headers
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert isinstance(out["checkoutUrl"], str) and out["checkoutUrl"] == out["url"]
    assert out["sessionId"].startswith("cs_")
    (sent,) = [x for x in connect.requests("/v1/checkout/sessions") if x["method"] == "POST"]
    assert sent["params"]["line_items"][0]["price_data"]["unit_amount"] == str(usd * 100)
    assert sent["params"]["payment_intent_data"]["metadata"] == {
        "user_id": str(fan.id),
        "tokens": str(tokens),
    }
    assert sent["idempotency_key"].startswith(f"checkout:{fan.id}:auto:")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"tokens": 100, "amount": 999}, "AMOUNT_MISMATCH"),  # cheaper than the table: never sold
        ({"tokens": 100, "amount": 1001}, "AMOUNT_MISMATCH"),
        ({"tokens": 123, "amount": 1230}, "INVALID_PACKAGE"),  # the custom amount box ($12.30)
        ({"tokens": 123, "amount": 1234.0000000000002}, "VALIDATION_ERROR"),  # parseFloat('12.34') * 100
        ({"tokens": 100, "tokenAmount": 500, "amount": 1000}, "VALIDATION_ERROR"),  # which one?
        ({"tokens": "100", "amount": 1000}, "VALIDATION_ERROR"),
    ],
)
def test_a_checkout_whose_price_disagrees_with_the_table_creates_nothing_at_stripe(
    make_user: MakeUser, connect: ConnectStandin, body: dict[str, Any], code: str
) -> None:
    full = {"success_url": f"{ORIGIN}/wallet?success=1", "cancel_url": f"{ORIGIN}/wallet?canceled=1", **body}
    r = client(CHECKOUT).post("/api/payments/create-checkout", json=full, headers=make_user().headers)
    assert (r.status_code, r.json()["code"]) == (422, code), r.text
    if code == "AMOUNT_MISMATCH":
        assert r.json()["expectedAmount"] == 1000 and r.json()["errors"][0]["field"] == "amount"
    assert connect.requests() == []  # nothing reached Stripe


def test_buy_sheet_session_reads_data_url_and_is_charged_the_table_price(
    make_user: MakeUser, connect: ConnectStandin
) -> None:
    fan = make_user()
    body = {  # BuyTokensSheet.jsx:48-53
        "priceId": "price_best_1500_tokens",
        "tokenAmount": 1500,
        "successUrl": f"{ORIGIN}/payment/success",
        "cancelUrl": f"{ORIGIN}/payment/cancel",
    }
    r = client(SESSION).post("/api/v1/payments/create-checkout-session", json=body, headers=fan.headers)
    assert r.status_code == 200, r.text
    out = r.json()
    assert isinstance(out["data"]["url"], str) and out["data"]["url"] == out["url"]  # response.data.url
    (sent,) = [x for x in connect.requests("/v1/checkout/sessions") if x["method"] == "POST"]
    assert sent["params"]["line_items"][0]["price_data"]["unit_amount"] == "9999"
    # The sheet's 500 pack says $39.99; the table charges $45 (Stripe's page shows it before paying).
    r = client(SESSION).post(
        "/api/payments/create-checkout-session",
        json={**body, "priceId": "price_popular_500_tokens", "tokenAmount": 500},
        headers=fan.headers,
    )
    assert r.status_code == 200
    last = [x for x in connect.requests("/v1/checkout/sessions") if x["method"] == "POST"][-1]
    assert last["params"]["line_items"][0]["price_data"]["unit_amount"] == "4500"


def test_checkout_retried_without_a_key_opens_one_session(
    make_user: MakeUser, connect: ConnectStandin
) -> None:
    fan = make_user()
    urls = {
        client(CHECKOUT)
        .post("/api/payments/create-checkout", json=mobile_body(100, 10), headers=fan.headers)
        .json()["url"]
        for _ in range(2)
    }
    assert len(urls) == 1
    assert len([x for x in connect.requests("/v1/checkout/sessions") if not x["replayed"]]) == 1


def test_checkout_refuses_gifts(make_user: MakeUser, connect: ConnectStandin) -> None:
    r = client(CHECKOUT).post(
        "/api/payments/create-checkout",
        json={**mobile_body(100, 10), "isGift": True},
        headers=make_user().headers,
    )
    assert (r.status_code, r.json()["code"]) == (422, "GIFT_NOT_SUPPORTED")
    assert connect.requests() == []


def test_a_paid_checkout_is_credited_once_through_the_webhook(
    make_user: MakeUser, connect: ConnectStandin
) -> None:
    """Locally end to end: the stand-in's hosted page pays, Stripe's events credit the tokens."""
    fan = make_user()
    with vercel_router.running() as server, httpx.Client(base_url=server.url, timeout=30) as http:
        connect.add_webhook(f"{server.url}/api/payments/webhook", WEBHOOK_SECRET)
        r = http.post("/api/v1/payments/create-checkout", json=mobile_body(500, 45), headers=fan.headers)
        assert r.status_code == 200, r.text
        page = httpx.get(r.json()["checkoutUrl"], follow_redirects=False, timeout=10)
        assert page.status_code == 302 and page.headers["location"] == f"{ORIGIN}/wallet?success=1"
        assert (
            httpx.get(r.json()["checkoutUrl"], follow_redirects=False, timeout=10).status_code == 302
        )  # again
        deadline = time.monotonic() + 15
        while balance(fan) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # checkout.session.completed lands too; it must not credit
    assert balance(fan) == 500
    assert [e["type"] for e in connect.events()] == ["payment_intent.succeeded", "checkout.session.completed"]
    assert json.loads(json.dumps(connect.events()[0]["data"]["object"]["metadata"])) == {
        "user_id": str(fan.id),
        "tokens": "500",
    }
    assert_books_balance()


def test_the_hosted_checkout_page_pays_at_localstripe_as_scripts_dev_runs_it(
    make_user: MakeUser, stripe_stack: ConnectStandin
) -> None:
    from tests.payouts.conftest import forward_events

    fan = make_user()
    r = client(CHECKOUT).post(
        "/api/payments/create-checkout", json=mobile_body(1000, 80), headers=fan.headers
    )
    assert r.status_code == 200, r.text
    assert httpx.get(r.json()["checkoutUrl"], follow_redirects=False, timeout=10).status_code == 302
    paid = stripe_stack.events("payment_intent.succeeded")[0]["data"]["object"]
    at_localstripe = stripe_api.client().v1.payment_intents.retrieve(paid["id"]).to_dict()
    assert (at_localstripe["status"], at_localstripe["amount"]) == ("succeeded", 8000)
    assert at_localstripe["metadata"] == {"user_id": str(fan.id), "tokens": "1000"}
    assert forward_events(stripe_stack) == [200, 200]
    assert forward_events(stripe_stack) == [200, 200]  # delivered twice: credited once
    assert balance(fan) == 1000
    assert_books_balance()
