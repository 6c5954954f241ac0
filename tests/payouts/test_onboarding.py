"""POST /creator-payouts/stripe-account/create and account.updated: one connected account, payoutsEnabled kept current."""

from __future__ import annotations

import json
import time

import httpx

from lib import db
from localdev.stripe_connect_standin import ConnectStandin
from tests.conftest import MakeUser
from tests.money.conftest import WEBHOOK_SECRET, sign
from tests.payouts.conftest import ONBOARD, RETURN_URLS, account_updated, dashboard, deliver
from tests.support.functions import client


def start(user: object, body: dict[str, str] | None = None) -> httpx.Response:
    headers = user.headers  # type: ignore[attr-defined]
    return client(ONBOARD).post(
        "/api/creator-payouts/stripe-account/create", json=body or RETURN_URLS, headers=headers
    )


def test_the_account_is_created_once_and_each_call_gets_a_fresh_link(
    make_user: MakeUser, connect: ConnectStandin
) -> None:
    user = make_user(role="creator")
    first, again = start(user), start(user)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["accountId"] == again.json()["accountId"]
    assert first.json()["url"] != again.json()["url"]
    assert first.json()["payoutsEnabled"] is False
    created = [r for r in connect.requests("/v1/accounts") if r["method"] == "POST"]
    assert len(created) == 1
    assert created[0]["idempotency_key"] == f"connect-account:{user.id}"
    assert created[0]["params"]["type"] == "express"
    assert created[0]["params"]["capabilities"] == {"transfers": {"requested": "true"}}
    assert created[0]["params"]["metadata"] == {"user_id": str(user.id)}
    links = connect.requests("/v1/account_links")
    assert [link["params"]["return_url"] for link in links] == [RETURN_URLS["returnUrl"]] * 2
    assert {link["params"]["type"] for link in links} == {"account_onboarding"}
    account = dashboard(user)["stripeAccount"]
    assert account["id"] == first.json()["accountId"] and account["payoutsEnabled"] is False


def test_finishing_onboarding_and_account_updated_enable_payouts(
    make_user: MakeUser, connect: ConnectStandin
) -> None:
    user = make_user(role="creator")
    url = start(user).json()["url"]
    followed = httpx.get(url, follow_redirects=False, timeout=5)  # the creator on Stripe's hosted pages
    assert followed.status_code == 302 and followed.headers["location"] == RETURN_URLS["returnUrl"]
    deadline = time.monotonic() + 5
    while not connect.events("account.updated"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    [event] = connect.events("account.updated")
    body = {k: v for k, v in event.items() if k != "deliveries"}
    assert deliver(json.dumps(body).encode()) == 200
    account = dashboard(user)["stripeAccount"]
    assert account["payoutsEnabled"] is True and account["detailsSubmitted"] is True
    assert account["currentlyDue"] == []


def test_an_older_account_snapshot_never_overwrites_a_newer_one(
    make_user: MakeUser, connect: ConnectStandin
) -> None:
    user = make_user(role="creator")
    account_id = start(user).json()["accountId"]
    enabled = connect.enable_account(account_id)
    disabled = connect.enable_account(account_id, payouts_enabled=False)
    now = int(time.time())
    assert deliver(account_updated(disabled, created=now)) == 200
    assert deliver(account_updated(enabled, created=now - 60)) == 200  # late delivery of an older event
    assert dashboard(user)["stripeAccount"]["payoutsEnabled"] is False
    assert dashboard(user)["stripeAccount"]["disabledReason"] == "requirements.past_due"


def test_account_updated_for_someone_elses_account_is_acknowledged(
    connect: ConnectStandin, make_user: MakeUser
) -> None:
    make_user()
    foreign = {"id": "acct_not_ours", "object": "account", "payouts_enabled": True}
    assert deliver(account_updated(foreign)) == 200
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) AS n FROM stripe_accounts").fetchone() == {"n": 0}


def test_connect_events_signed_with_the_platform_secret_are_accepted_too(
    make_user: MakeUser, connect: ConnectStandin
) -> None:
    user = make_user(role="creator")
    account_id = start(user).json()["accountId"]
    assert deliver(account_updated(connect.enable_account(account_id)), secret=WEBHOOK_SECRET) == 200
    assert dashboard(user)["stripeAccount"]["payoutsEnabled"] is True


def test_a_badly_signed_account_update_changes_nothing(make_user: MakeUser, connect: ConnectStandin) -> None:
    user = make_user(role="creator")
    account_id = start(user).json()["accountId"]
    payload = account_updated(connect.enable_account(account_id))
    headers = {"Stripe-Signature": sign(payload, "whsec_someone_else"), "Content-Type": "application/json"}
    r = client("payments/webhook.py").post("/api/payments/webhook", content=payload, headers=headers)
    assert r.status_code == 400
    assert dashboard(user)["stripeAccount"]["payoutsEnabled"] is False


def test_return_urls_must_be_our_own_frontends(make_user: MakeUser, connect: ConnectStandin) -> None:
    user = make_user(role="creator")
    r = start(user, {**RETURN_URLS, "returnUrl": "https://evil.example/steal"})
    assert r.status_code == 422 and r.json()["code"] == "INVALID_RETURN_URL"
    assert [e["field"] for e in r.json()["errors"]] == ["returnUrl"]
    assert connect.requests("/v1/accounts") == []
    assert start(user, {"returnUrl": RETURN_URLS["returnUrl"]}).status_code == 422


def test_only_creators_onboard(make_user: MakeUser, connect: ConnectStandin) -> None:
    assert start(make_user()).status_code == 403
    assert connect.requests() == []


def test_stripe_being_down_is_a_503_and_nothing_is_recorded(
    make_user: MakeUser, connect: ConnectStandin
) -> None:
    user = make_user(role="creator")
    connect.fail_next(503, times=3, path="/v1/accounts")
    r = start(user)
    assert r.status_code == 503 and r.json()["code"] == "PAYMENTS_UNAVAILABLE"
    assert dashboard(user)["stripeAccount"] is None
    assert start(user).status_code == 200  # the retry reuses the idempotency key: still one account
    assert len({r["params"]["metadata"]["user_id"] for r in connect.requests("/v1/accounts")}) == 1
    assert len(connect.accounts) == 1
