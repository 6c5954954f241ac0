"""localdev.stripe_connect_standin: Stripe's method, path, key and idempotency rules, signed events, the CLI."""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from lib.payments import stripe_api
from localdev import stripe_connect_standin
from localdev.stripe_connect_standin import ConnectStandin, parse_form
from tests.conftest import TEST_ENV

KEY = "sk_test_standin_key"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def standin() -> Iterator[ConnectStandin]:
    with stripe_connect_standin.running(secret_key=KEY) as server:
        yield server


def call(
    server: ConnectStandin, method: str, path: str, *, key: str | None = KEY, **kwargs: Any
) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers.setdefault("Authorization", f"Bearer {key}")
    return httpx.request(method, server.url + path, headers=headers, timeout=5, **kwargs)


def test_parse_form_reads_stripes_bracket_encoding() -> None:
    pairs = [
        ("amount", "100"),
        ("metadata[payout_id]", "p1"),
        ("capabilities[transfers][requested]", "true"),
        ("expand[]", "a"),
        ("expand[]", "b"),
        ("items[0][price]", "x"),
        ("items[1][price]", "y"),
    ]
    assert parse_form(pairs) == {
        "amount": "100",
        "metadata": {"payout_id": "p1"},
        "capabilities": {"transfers": {"requested": "true"}},
        "expand": ["a", "b"],
        "items": [{"price": "x"}, {"price": "y"}],
    }


def test_the_secret_key_is_required_as_bearer_or_basic(standin: ConnectStandin) -> None:
    assert call(standin, "GET", "/v1/accounts", key=None).status_code == 401
    r = call(standin, "GET", "/v1/accounts", key="sk_test_wrong")
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    basic = base64.b64encode(f"{KEY}:".encode()).decode()
    assert (
        call(
            standin, "GET", "/v1/accounts", key=None, headers={"Authorization": f"Basic {basic}"}
        ).status_code
        == 200
    )
    assert call(standin, "GET", "/v1/accounts").json()["object"] == "list"


def test_unknown_paths_and_wrong_methods_are_refused_like_stripe(standin: ConnectStandin) -> None:
    for method, path in (("DELETE", "/v1/transfers"), ("PUT", "/v1/accounts"), ("POST", "/v1/payouts")):
        r = call(standin, method, path)
        assert r.status_code == 404, (method, path)
        assert r.json()["error"]["message"].startswith(f"Unrecognized request URL ({method}: {path})")
    assert call(standin, "GET", "/v1/transfers/tr_missing").json()["error"]["code"] == "resource_missing"


def test_an_idempotency_key_replays_and_refuses_other_parameters(standin: ConnectStandin) -> None:
    first = call(standin, "POST", "/v1/accounts", data={"type": "express"}, headers={"Idempotency-Key": "k1"})
    again = call(standin, "POST", "/v1/accounts", data={"type": "express"}, headers={"Idempotency-Key": "k1"})
    assert first.json()["id"] == again.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    other = call(standin, "POST", "/v1/accounts", data={"type": "custom"}, headers={"Idempotency-Key": "k1"})
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    assert len(standin.accounts) == 1
    assert [r["idempotency_key"] for r in standin.requests("/v1/accounts")] == ["k1", "k1", "k1"]


def test_transfers_need_an_onboarded_destination_and_funds(standin: ConnectStandin) -> None:
    account = call(
        standin, "POST", "/v1/accounts", data={"capabilities[transfers][requested]": "true"}
    ).json()
    body = {"amount": "500", "currency": "usd", "destination": account["id"]}
    r = call(standin, "POST", "/v1/transfers", data=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "insufficient_capabilities_for_transfer"
    standin.enable_account(account["id"])
    standin.platform_balance = 499
    assert call(standin, "POST", "/v1/transfers", data=body).json()["error"]["code"] == "balance_insufficient"
    standin.platform_balance = 10_000
    transfer = call(standin, "POST", "/v1/transfers", data={**body, "transfer_group": "g1"}).json()
    assert (transfer["amount"], transfer["destination"], standin.balance_of(account["id"])) == (
        500,
        account["id"],
        500,
    )
    assert (
        call(standin, "GET", "/v1/transfers", params={"transfer_group": "g1"}).json()["data"][0]["id"]
        == transfer["id"]
    )
    reversal = call(
        standin, "POST", f"/v1/transfers/{transfer['id']}/reversals", data={"amount": "200"}
    ).json()
    assert reversal["object"] == "transfer_reversal" and reversal["amount"] == 200
    assert call(standin, "GET", f"/v1/transfers/{transfer['id']}").json()["amount_reversed"] == 200
    too_much = call(standin, "POST", f"/v1/transfers/{transfer['id']}/reversals", data={"amount": "301"})
    assert too_much.status_code == 400


def test_injected_failures_are_not_remembered_under_the_key(standin: ConnectStandin) -> None:
    standin.fail_next(503, path="/v1/accounts")
    headers = {"Idempotency-Key": "k2"}
    assert call(standin, "POST", "/v1/accounts", headers=headers).status_code == 503
    assert call(standin, "POST", "/v1/accounts", headers=headers).status_code == 200


class _Sink(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.received: list[tuple[bytes, str]] = []


class _SinkHandler(BaseHTTPRequestHandler):
    server: _Sink

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((body, self.headers["Stripe-Signature"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_events_are_signed_the_way_our_webhook_verifies_them(standin: ConnectStandin) -> None:
    sink = _Sink()
    thread = threading.Thread(target=sink.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        secret = TEST_ENV["STRIPE_CONNECT_WEBHOOK_SECRET"]
        standin.add_webhook(f"http://127.0.0.1:{sink.server_address[1]}/hook", secret)
        account = call(standin, "POST", "/v1/accounts").json()
        standin.enable_account(account["id"])
        deadline = time.monotonic() + 5
        while not sink.received:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        sink.shutdown()
        sink.server_close()
        thread.join(5)
    body, signature = sink.received[0]
    event = stripe_api.verify_webhook(body, signature)
    assert event["type"] == "account.updated" and event["account"] == account["id"]
    assert event["data"]["object"]["payouts_enabled"] is True


def test_stripe_python_talks_to_it(standin: ConnectStandin, set_env: Any) -> None:
    set_env("STRIPE_SECRET_KEY", KEY)
    set_env("STRIPE_API_BASE", standin.url)
    account = stripe_api.create_connected_account(
        user_id="u", email="c@example.test", idempotency_key="acct-u"
    )
    assert account.id.startswith("acct_") and not account.payouts_enabled
    url = stripe_api.create_account_link(
        account_id=account.id, refresh_url="http://x/r", return_url="http://x/d"
    )
    assert url.startswith(standin.url + "/connect/onboarding/" + account.id)
    with pytest.raises(stripe_api.Refused) as refused:
        stripe_api.create_transfer(
            amount_cents=100, currency="usd", destination=account.id, metadata={}, transfer_group="g",
            idempotency_key="t1",
        )  # fmt: skip
    assert refused.value.code == "insufficient_capabilities_for_transfer"


def test_the_cli_prints_ready_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "localdev.stripe_connect_standin", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "no ready line in 20s"
        line = proc.stdout.readline()
        assert line.startswith("ready http://127.0.0.1:")
        url = line.split()[1]
        r = httpx.get(
            url + "/v1/accounts", headers={"Authorization": "Bearer sk_test_digis_local_0000000000000000"}
        )
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_other_calls_go_upstream_to_localstripe() -> None:
    from localdev import stripe_standin

    with (
        stripe_standin.running() as localstripe,
        stripe_connect_standin.running(secret_key=KEY, upstream=localstripe.url) as standin,
    ):
        r = call(standin, "POST", "/v1/customers", data={"email": "fan@example.test"})
        assert r.status_code == 200, r.text
        assert r.json()["object"] == "customer"
        assert json.loads(json.dumps(standin.requests("/v1/customers")))[0]["status"] == 200
