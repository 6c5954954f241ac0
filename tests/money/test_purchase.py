"""POST /tokens/purchase end to end: localstripe confirms the PaymentIntent and delivers its signed webhook."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from lib import db, ledger
from lib.payments import stripe_api
from localdev import stripe_standin, vercel_router
from tests.conftest import MakeUser
from tests.money.conftest import WEBHOOK_SECRET, assert_books_balance
from tests.support.functions import client

PURCHASE = "tokens/purchase.py"


@pytest.fixture
def localstripe(set_env: Callable[[str, str], None]) -> Iterator[stripe_standin.LocalStripe]:
    """localstripe on a free port, with stripe-python pointed at it."""
    with stripe_standin.running() as ls:
        set_env("STRIPE_API_BASE", ls.url)
        yield ls


def card(number: str) -> str:
    """A localstripe payment method for a test card number."""
    pm = stripe_api.client().v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    return str(pm.id)


def wait_for_event(event_type: str, timeout_s: float = 15.0) -> None:
    """Until localstripe's webhook (sent ~1 s after the fact) has been handled."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with db.transaction() as conn:
            if conn.execute("SELECT 1 FROM stripe_events WHERE type = %s", (event_type,)).fetchone():
                return
        time.sleep(0.1)
    raise AssertionError(f"no {event_type} webhook within {timeout_s}s")


def test_purchase_end_to_end_credits_once(
    make_user: MakeUser, localstripe: stripe_standin.LocalStripe
) -> None:
    fan = make_user()
    with vercel_router.running() as server, httpx.Client(base_url=server.url, timeout=30) as http:
        localstripe.add_webhook(
            "digis", f"{server.url}/api/webhooks/stripe", WEBHOOK_SECRET, ["payment_intent.succeeded"]
        )
        body = {"tokenAmount": 200, "paymentMethodId": card("4242424242424242")}
        headers = {**fan.headers, "Idempotency-Key": "buy-200"}
        r = http.post("/api/v1/tokens/purchase", json=body, headers=headers)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["success"] is True and out["balance"] == 200
        assert out["paymentIntent"]["status"] == "succeeded"
        assert out["paymentIntent"]["id"].startswith("pi_") and out["paymentIntent"]["client_secret"]
        wait_for_event("payment_intent.succeeded")
        again = http.post("/api/v1/tokens/purchase", json=body, headers=headers)
        assert again.json() == out and again.headers["Idempotency-Replayed"] == "true"
        assert http.get("/api/tokens/balance", headers=fan.headers).json()["balance"] == 200
    with db.transaction() as conn:
        pay = conn.execute(
            "SELECT user_id, tokens, amount_cents, status, tokens_applied FROM payments"
        ).fetchall()
    assert pay == [
        {"user_id": fan.id, "tokens": 200, "amount_cents": 1900, "status": "succeeded", "tokens_applied": 200}
    ]
    assert_books_balance()


def test_3d_secure_purchase_is_credited_by_the_webhook(
    make_user: MakeUser, localstripe: stripe_standin.LocalStripe
) -> None:
    fan = make_user()
    with vercel_router.running() as server, httpx.Client(base_url=server.url, timeout=30) as http:
        localstripe.add_webhook("digis", f"{server.url}/api/payments/webhook", WEBHOOK_SECRET)
        r = http.post(
            "/api/tokens/purchase",
            json={"tokenAmount": 50, "paymentMethodId": card("4000002500003155")},
            headers=fan.headers,
        )
        out = r.json()
        assert r.status_code == 200 and out["success"] is False and out["balance"] == 0
        intent = out["paymentIntent"]
        assert intent["status"] == "requires_action" and intent["client_secret"]
        # What stripe.js does in the browser: complete the challenge with the client_secret.
        httpx.post(
            f"{localstripe.url}/v1/payment_intents/{intent['id']}/_authenticate",
            data={"client_secret": intent["client_secret"], "success": "true", "key": "pk_test"},
            timeout=10,
        ).raise_for_status()
        wait_for_event("payment_intent.succeeded")
        assert http.get("/api/tokens/balance", headers=fan.headers).json()["balance"] == 50
    assert_books_balance()


def test_declined_card_is_402_and_credits_nothing(
    make_user: MakeUser, localstripe: stripe_standin.LocalStripe
) -> None:
    fan = make_user()
    r = client(PURCHASE).post(
        "/api/tokens/purchase",
        json={"tokenAmount": 50, "paymentMethodId": card("4000000000000341")},
        headers=fan.headers,
    )
    assert (r.status_code, r.json()["code"]) == (402, "CARD_DECLINED")
    with db.transaction() as conn:
        assert ledger.balance(conn, fan.id) == 0


@pytest.mark.parametrize("amount", [51, "50", 50.0])
def test_only_configured_packs_and_integer_amounts_are_sold(make_user: MakeUser, amount: Any) -> None:
    r = client(PURCHASE).post(
        "/api/tokens/purchase",
        json={"tokenAmount": amount, "paymentMethodId": "pm_x"},
        headers=make_user().headers,
    )
    assert r.status_code == 422


class _FlakyStripe(BaseHTTPRequestHandler):
    """Answers the first PaymentIntent create with a 500, then succeeds; records each Idempotency-Key."""

    keys: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).keys.append(self.headers.get("Idempotency-Key", ""))
        if len(type(self).keys) == 1:
            self._answer(500, {"error": {"type": "api_error", "message": "try again"}})
            return
        self._answer(
            200,
            {
                "id": "pi_flaky",
                "object": "payment_intent",
                "status": "succeeded",
                "amount": 500,
                "currency": "usd",
                "client_secret": "pi_flaky_secret_x",
                "metadata": {},
            },
        )

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        """Quiet."""


def test_a_stripe_5xx_is_retried_with_the_same_idempotency_key(
    make_user: MakeUser, set_env: Callable[[str, str], None]
) -> None:
    fan = make_user()
    _FlakyStripe.keys = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyStripe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        set_env("STRIPE_API_BASE", f"http://127.0.0.1:{server.server_address[1]}")
        headers = {**fan.headers, "Idempotency-Key": "client-key-1"}
        r = client(PURCHASE).post(
            "/api/tokens/purchase", json={"tokenAmount": 50, "paymentMethodId": "pm_card"}, headers=headers
        )
        assert r.status_code == 200 and r.json()["balance"] == 50
        again = client(PURCHASE).post(
            "/api/tokens/purchase", json={"tokenAmount": 50, "paymentMethodId": "pm_card"}, headers=headers
        )
        assert again.json() == r.json()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert (
        _FlakyStripe.keys == [f"purchase:{fan.id}:client-key-1"] * 2
    )  # the retry reused it; the replay sent none
    with db.transaction() as conn:
        assert ledger.balance(conn, fan.id) == 50
    assert_books_balance()


def test_stripe_unreachable_is_503_and_records_nothing(make_user: MakeUser) -> None:
    fan = make_user()  # STRIPE_API_BASE points at a closed port in tests
    r = client(PURCHASE).post(
        "/api/tokens/purchase",
        json={"tokenAmount": 50, "paymentMethodId": "pm_card"},
        headers={**fan.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert (r.status_code, r.json()["code"]) == (503, "PAYMENTS_UNAVAILABLE")
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) AS n FROM payments").fetchone() == {"n": 0}
        assert conn.execute("SELECT count(*) AS n FROM idempotency_keys").fetchone() == {"n": 0}


class _RecordingStripe(BaseHTTPRequestHandler):
    """A Checkout Sessions stand-in (localstripe has none): records each form body, answers a session."""

    bodies: ClassVar[list[dict[str, list[str]]]] = []

    def do_POST(self) -> None:
        from urllib.parse import parse_qs

        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        type(self).bodies.append(parse_qs(raw))
        data = json.dumps(
            {
                "id": "cs_test_1",
                "object": "checkout.session",
                "url": "https://checkout.stripe.test/cs_test_1",
                "payment_intent": "pi_from_checkout",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        """Quiet."""


def test_checkout_session_carries_the_purchase_metadata(
    make_user: MakeUser, set_env: Callable[[str, str], None]
) -> None:
    from tests.money.conftest import intent_succeeded
    from tests.money.test_webhooks import deliver

    fan = make_user()
    _RecordingStripe.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingStripe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        set_env("STRIPE_API_BASE", f"http://127.0.0.1:{server.server_address[1]}")
        r = client("payments/create-checkout.py").post(
            "/api/payments/create-checkout",
            json={
                "tokenAmount": 812,
                "successUrl": "https://digis-app-git-main-digisapp.vercel.app/ok",
                "cancelUrl": "http://localhost:5173/x",
            },
            headers=fan.headers,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "sessionId": "cs_test_1",
        "url": "https://checkout.stripe.test/cs_test_1",
        "checkoutUrl": "https://checkout.stripe.test/cs_test_1",
    }
    sent = _RecordingStripe.bodies[0]
    assert sent["metadata[user_id]"] == sent["payment_intent_data[metadata][user_id]"] == [str(fan.id)]
    assert sent["metadata[tokens]"] == sent["payment_intent_data[metadata][tokens]"] == ["812"]
    assert sent["line_items[0][price_data][unit_amount]"] == ["6900"]
    # The session's intent succeeds later: the webhook credits it like any purchase.
    assert deliver(intent_succeeded("pi_from_checkout", fan.id, 812, 6900)) == 200
    with db.transaction() as conn:
        assert ledger.balance(conn, fan.id) == 812
        assert conn.execute("SELECT stripe_checkout_session_id FROM payments").fetchone() == {
            "stripe_checkout_session_id": "cs_test_1"
        }


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/ok",
        "javascript:alert(1)",
        "https://app.vercel.app.evil.io/",
        "https://someone-else.vercel.app/ok",
        "http://127.0.0.1:3000/ok",  # the API's own origin is not a frontend
    ],
)
def test_checkout_refuses_return_urls_outside_our_origins(make_user: MakeUser, url: str) -> None:
    r = client("payments/create-checkout.py").post(
        "/api/payments/create-checkout",
        json={"tokenAmount": 50, "successUrl": url, "cancelUrl": "http://localhost:5173/x"},
        headers=make_user().headers,
    )
    assert (r.status_code, r.json()["code"]) == (422, "INVALID_RETURN_URL")
    assert [e["field"] for e in r.json()["errors"]] == ["successUrl"]
