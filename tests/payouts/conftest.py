"""Payout fixtures: the Connect stand-in as STRIPE_API_BASE, an injectable clock, creators with earnings."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from lib import db, ledger
from lib.payouts import clock as payouts_clock
from localdev import stripe_connect_standin
from localdev.stripe_connect_standin import ConnectStandin
from tests.conftest import TEST_ENV, MakeUser, TestUser
from tests.money.conftest import CONNECT_SECRET, event, intent_succeeded, set_env, sign
from tests.support.functions import client

__all__ = ["set_env"]  # re-exported fixture

SECRET_KEY = TEST_ENV["STRIPE_SECRET_KEY"]
WEBHOOK = "payments/webhook.py"
DASHBOARD = "creator-payouts/dashboard.py"
ONBOARD = "creator-payouts/stripe-account/create.py"
REQUEST = "creator-payouts/request-payout.py"
RETURN_URLS = {
    "returnUrl": "http://localhost:5173/payouts/done",
    "refreshUrl": "http://localhost:5173/payouts/again",
}


class Clock:
    """lib.payouts' clock, moved forward by tests (ledger rows keep their real timestamps)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Move payouts' notion of now (the reserve window) without sleeping."""
    c = Clock()
    monkeypatch.setattr(payouts_clock, "now", c.now)
    return c


@pytest.fixture
def connect(set_env: Callable[[str, str], None]) -> Iterator[ConnectStandin]:
    """A Connect stand-in of this test's own, as STRIPE_API_BASE (checking the test secret key)."""
    with stripe_connect_standin.running(secret_key=SECRET_KEY) as server:
        set_env("STRIPE_API_BASE", server.url)
        yield server


def deliver(payload: bytes, *, secret: str = CONNECT_SECRET) -> int:
    """POST a Stripe event to the webhook, signed exactly as Stripe signs it."""
    headers = {"Stripe-Signature": sign(payload, secret), "Content-Type": "application/json"}
    return client(WEBHOOK).post("/api/payments/webhook", content=payload, headers=headers).status_code


def forward_events(server: ConnectStandin, *types: str) -> list[int]:
    """Deliver what the stand-in emitted (of these types) to our webhook, re-signed by the test."""
    codes = []
    for e in server.events():
        if not types or e["type"] in types:
            body = {k: v for k, v in e.items() if k != "deliveries"}
            codes.append(deliver(json.dumps(body).encode()))
    return codes


def account_updated(account: dict[str, Any], *, created: int | None = None) -> bytes:
    """account.updated for a connected account (a Connect event: `account` at the top level)."""
    extra: dict[str, Any] = {"account": account["id"]}
    body = json.loads(event("account.updated", account, **extra))
    if created is not None:
        body["created"] = created
    return json.dumps(body).encode()


def buy(user: TestUser | uuid.UUID, tokens: int, cents: int | None = None) -> str:
    """A token purchase through the real webhook (it credits the tokens and opens the purchase's lot)."""
    pi = f"pi_{uuid.uuid4().hex[:24]}"
    user_id = user.id if isinstance(user, TestUser) else user
    assert (
        deliver(
            intent_succeeded(pi, user_id, tokens, cents or tokens * 10),
            secret=TEST_ENV["STRIPE_WEBHOOK_SECRET"],
        )
        == 200
    )
    return pi


def tip(fan: TestUser, creator: TestUser, amount: int) -> ledger.Transfer:
    """A fan -> creator transfer through the ledger (what tips and call minutes do)."""
    with db.transaction() as conn:
        moved = ledger.transfer(
            conn,
            from_user=fan.id,
            to_user=creator.id,
            amount=amount,
            kind="tip",
            reference_type="test",
            reference_id="payouts",
            idempotency_key=uuid.uuid4().hex,
        )
    assert moved is not None
    return moved


def state(user: TestUser | uuid.UUID) -> tuple[int, int]:
    """(balance, debt)."""
    user_id = user.id if isinstance(user, TestUser) else user
    with db.transaction() as conn:
        return ledger.balance(conn, user_id), ledger.debt(conn, user_id)


@dataclass
class Creator:
    """A creator with a connected account whose payouts are enabled."""

    user: TestUser
    account_id: str

    @property
    def headers(self) -> dict[str, str]:
        return self.user.headers

    @property
    def id(self) -> uuid.UUID:
        return self.user.id


def onboard(connect: ConnectStandin, user: TestUser, *, enable: bool = True) -> Creator:
    """Onboard through the API, finish it on the stand-in, and deliver its account.updated."""
    r = client(ONBOARD).post(
        "/api/creator-payouts/stripe-account/create", json=RETURN_URLS, headers=user.headers
    )
    assert r.status_code == 200, r.text
    account_id = r.json()["accountId"]
    if enable:
        snapshot = connect.enable_account(account_id)
        assert deliver(account_updated(snapshot)) == 200
    return Creator(user, account_id)


@pytest.fixture
def creator(make_user: MakeUser, connect: ConnectStandin) -> Creator:
    """An onboarded creator (payouts enabled), no earnings yet."""
    return onboard(connect, make_user(role="creator"))


def dashboard(who: TestUser | Creator) -> dict[str, Any]:
    r = client(DASHBOARD).get("/api/creator-payouts/dashboard", headers=who.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def request_payout(who: TestUser | Creator, body: dict[str, Any] | None = None, **headers: str) -> Any:
    return client(REQUEST).post(
        "/api/creator-payouts/request-payout",
        json=body if body is not None else {},
        headers={**who.headers, **headers},
    )


def backdate(user: TestUser | Creator | uuid.UUID, days: float) -> None:
    """Make everything the user earned so far `days` older (the ledger stamps rows with the database's clock).

    Test-only surgery on timestamps: the append-only triggers are bypassed the way tests/conftest cleans up.
    """
    user_id = user if isinstance(user, uuid.UUID) else user.id
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        shift = {"u": user_id, "d": days}
        conn.execute(
            "UPDATE token_transactions SET created_at = created_at - make_interval(secs => %(d)s * 86400) "
            "WHERE user_id = %(u)s",
            shift,
        )
        conn.execute(
            "UPDATE earning_sources SET created_at = created_at - make_interval(secs => %(d)s * 86400) "
            "WHERE payee_id = %(u)s",
            shift,
        )
        conn.execute(
            "UPDATE payment_clawbacks SET earned_at = earned_at - make_interval(secs => %(d)s * 86400) "
            "WHERE user_id = %(u)s AND party = 'earning'",
            shift,
        )


def earn(make_user: MakeUser, creator: TestUser | Creator, amount: int) -> TestUser:
    """A fresh fan buys `amount` tokens and spends all of them on the creator."""
    fan = make_user()
    buy(fan, amount)
    tip(fan, creator.user if isinstance(creator, Creator) else creator, amount)
    return fan
