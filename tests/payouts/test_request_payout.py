"""POST /creator-payouts/request-payout: checks, the Stripe transfer, retries, failures and Stripe's events."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from lib import db, ledger, payouts
from lib.payments import stripe_api
from localdev import vercel_router
from localdev.stripe_connect_standin import ConnectStandin
from tests.conftest import MakeUser
from tests.money.conftest import assert_books_balance
from tests.payouts.conftest import (
    Clock,
    Creator,
    backdate,
    dashboard,
    earn,
    forward_events,
    onboard,
    request_payout,
    state,
)


def ready(make_user: MakeUser, creator: Creator, clock: Clock, tokens: int = 600) -> None:
    """The creator has `tokens` available."""
    earn(make_user, creator, tokens)
    clock.advance(days=8)


def payout_row(payout_id: str) -> dict[str, Any]:
    with db.transaction() as conn:
        row = conn.execute("SELECT * FROM payouts WHERE id = %s", (payout_id,)).fetchone()
    assert row is not None
    return dict(row)


def transfers(connect: ConnectStandin) -> list[dict[str, Any]]:
    return [r for r in connect.requests("/v1/transfers") if r["method"] == "POST" and r["status"] == 200]


def test_payouts_need_a_finished_onboarding(
    make_user: MakeUser, connect: ConnectStandin, clock: Clock
) -> None:
    user = make_user(role="creator")
    r = request_payout(user)
    assert r.status_code == 400 and r.json()["code"] == "PAYOUTS_NOT_ENABLED"
    assert "onboarding" in r.json()["message"]
    started = onboard(connect, user, enable=False)
    ready(make_user, started, clock)
    r = request_payout(user)
    assert r.status_code == 400 and r.json()["code"] == "PAYOUTS_NOT_ENABLED"
    assert r.json()["onboardingStarted"] is True


def test_below_the_minimum_is_refused_with_the_numbers(make_user: MakeUser, creator: Creator) -> None:
    earn(make_user, creator, 400)
    backdate(creator, 8)  # available
    earn(make_user, creator, 300)  # held
    r = request_payout(creator)
    body = r.json()
    assert r.status_code == 400 and body["code"] == "BELOW_MINIMUM"
    assert (body["minimumTokens"], body["availableTokens"], body["heldTokens"]) == (500, 400, 300)
    assert body["message"] == (
        "The minimum payout is 500 tokens; you have 400 available (300 more are held for the reserve period)"
    )
    assert request_payout(creator, {"tokens": 100}).json()["code"] == "BELOW_MINIMUM"
    assert state(creator.user) == (700, 0)


def test_more_than_available_is_refused(make_user: MakeUser, creator: Creator, clock: Clock) -> None:
    ready(make_user, creator, clock, 600)
    r = request_payout(creator, {"tokens": 601})
    assert r.status_code == 400 and r.json()["code"] == "INSUFFICIENT_AVAILABLE_TOKENS"
    assert r.json()["availableTokens"] == 600


def test_tokens_must_be_a_json_integer(creator: Creator) -> None:
    for bad in ("600", 600.0, True, 0, -5):
        assert request_payout(creator, {"tokens": bad}).status_code == 422, bad


def test_a_payout_takes_the_tokens_and_transfers_their_value_keyed_by_the_payout(
    make_user: MakeUser, creator: Creator, clock: Clock, connect: ConnectStandin
) -> None:
    ready(make_user, creator, clock, 600)
    r = request_payout(creator)
    assert r.status_code == 200, r.text
    payout = r.json()["payout"]
    assert {k: payout[k] for k in ("tokens", "amountCents", "status")} == {
        "tokens": 600,
        "amountCents": 3000,
        "status": "pending",  # the transfer goes after the commit
    }
    [sent] = transfers(connect)
    assert sent["idempotency_key"] == f"payout:{payout['id']}"
    assert sent["headers"]["authorization"] == "Bearer sk_test_digis_local"
    assert sent["params"]["amount"] == "3000" and sent["params"]["destination"] == creator.account_id
    assert sent["params"]["metadata"]["payout_id"] == payout["id"]
    row = payout_row(payout["id"])
    assert row["status"] == "in_transit" and row["stripe_transfer_id"].startswith("tr_")
    body = dashboard(creator)
    assert (body["availableTokens"], body["pendingTokens"], body["paidTokens"]) == (0, 600, 0)
    assert body["payouts"][0]["status"] == "in_transit"
    assert state(creator.user) == (0, 0)
    assert_books_balance()


def test_part_of_the_available_tokens_can_be_paid_out(
    make_user: MakeUser, creator: Creator, clock: Clock
) -> None:
    ready(make_user, creator, clock, 800)
    r = request_payout(creator, {"tokens": 500})
    assert r.status_code == 200 and r.json()["payout"]["amountCents"] == 2500
    assert dashboard(creator)["availableTokens"] == 300


def test_a_request_without_a_body_pays_out_everything_available(
    make_user: MakeUser, creator: Creator, clock: Clock
) -> None:
    from tests.support.functions import client

    ready(make_user, creator, clock, 700)
    r = client("creator-payouts/request-payout.py").post(
        "/api/creator-payouts/request-payout", headers=creator.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["payout"]["tokens"] == 700
    unknown = request_payout(creator, {"amount": 500})
    assert unknown.status_code == 422


def test_payout_paid_marks_it_paid(
    make_user: MakeUser, creator: Creator, clock: Clock, connect: ConnectStandin
) -> None:
    ready(make_user, creator, clock, 600)
    payout_id = request_payout(creator).json()["payout"]["id"]
    connect.pay_out(creator.account_id, status="paid")
    assert forward_events(connect, "payout.paid") == [200]
    row = payout_row(payout_id)
    assert (
        row["status"] == "paid" and row["paid_at"] is not None and row["stripe_payout_id"].startswith("po_")
    )
    body = dashboard(creator)
    assert (body["paidTokens"], body["pendingTokens"], body["availableTokens"]) == (600, 0, 0)
    assert_books_balance()


def test_a_refused_transfer_fails_the_payout_and_returns_the_tokens(
    make_user: MakeUser, creator: Creator, clock: Clock, connect: ConnectStandin
) -> None:
    ready(make_user, creator, clock, 600)
    connect.platform_balance = 100  # the platform's Stripe balance cannot cover $30
    payout_id = request_payout(creator).json()["payout"]["id"]
    row = payout_row(payout_id)
    assert (row["status"], row["failure_code"], row["tokens_returned"]) == (
        "failed",
        "balance_insufficient",
        600,
    )
    assert state(creator.user) == (600, 0)
    body = dashboard(creator)
    assert body["availableTokens"] == 600 and body["payouts"][0]["status"] == "failed"
    assert body["payouts"][0]["failureCode"] == "balance_insufficient"
    with db.transaction() as conn:
        kinds = [
            r["type"]
            for r in conn.execute(
                "SELECT type FROM token_transactions WHERE user_id = %s ORDER BY seq", (creator.id,)
            )
        ]
    assert kinds == ["tip", "payout", "payout_reversal"]
    assert_books_balance()


def test_an_outage_leaves_the_payout_pending_and_the_retry_never_pays_twice(
    make_user: MakeUser, creator: Creator, clock: Clock, connect: ConnectStandin
) -> None:
    ready(make_user, creator, clock, 600)
    connect.fail_next(503, times=3, path="/v1/transfers")  # the SDK's first try and both of its retries
    payout_id = request_payout(creator).json()["payout"]["id"]
    row = payout_row(payout_id)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert transfers(connect) == []
    assert state(creator.user) == (0, 0)  # the tokens stay reserved for the payout
    now = datetime.now(UTC)
    assert (
        payouts.retry_stalled_transfers(now)["checked"] == 0
    )  # too fresh: its own send may still be running
    assert payouts.retry_stalled_transfers(now + timedelta(minutes=3)) == {"checked": 1, "in_transit": 1}
    assert payouts.retry_stalled_transfers(now + timedelta(minutes=6)) == {"checked": 0}
    assert payouts.send_transfer(row["id"]) == "in_transit"
    assert len(transfers(connect)) == 1
    assert payout_row(payout_id)["status"] == "in_transit"


def test_a_transfer_made_before_a_lost_answer_is_found_not_repeated(
    make_user: MakeUser, creator: Creator, clock: Clock, connect: ConnectStandin
) -> None:
    ready(make_user, creator, clock, 600)
    with db.transaction() as conn:
        user = conn.execute("SELECT * FROM users WHERE id = %s", (creator.id,)).fetchone()
        result = payouts.request_payout(conn, payouts_user(user), None, send=False)
    payout_id = result.payout.id
    # Stripe made the transfer, but our process died before recording it (and past the key's 24 hours).
    stripe_api.create_transfer(
        amount_cents=3000,
        currency="usd",
        destination=creator.account_id,
        metadata={"payout_id": str(payout_id)},
        transfer_group=f"payout_{payout_id}",
        idempotency_key="some-earlier-key",
    )
    assert payouts.retry_stalled_transfers(datetime.now(UTC) + timedelta(minutes=3)) == {
        "checked": 1,
        "in_transit": 1,
    }
    assert len(transfers(connect)) == 1


def test_transfer_reversed_returns_the_reversed_share_of_the_tokens(
    make_user: MakeUser, creator: Creator, clock: Clock, connect: ConnectStandin
) -> None:
    ready(make_user, creator, clock, 600)
    payout_id = request_payout(creator).json()["payout"]["id"]
    transfer_id = payout_row(payout_id)["stripe_transfer_id"]
    connect.clear()
    connect.create_reversal({"amount": "1000"}, transfer_id)  # a third of it, from the Stripe dashboard
    connect_wait(connect, "transfer.reversed")
    assert forward_events(connect, "transfer.reversed") == [200]
    assert state(creator.user) == (200, 0)
    row = payout_row(payout_id)
    assert (row["status"], row["tokens_returned"], row["amount_reversed_cents"]) == ("in_transit", 200, 1000)
    connect.clear()
    connect.create_reversal({}, transfer_id)
    connect_wait(connect, "transfer.reversed")
    assert forward_events(connect, "transfer.reversed") == [200]
    assert forward_events(connect, "transfer.reversed") == [200]  # a second delivery changes nothing
    assert state(creator.user) == (600, 0)
    assert payout_row(payout_id)["status"] == "reversed"
    assert dashboard(creator)["availableTokens"] == 600
    assert_books_balance()


def test_payout_failed_pulls_the_money_back_and_returns_the_tokens(
    make_user: MakeUser, creator: Creator, clock: Clock, connect: ConnectStandin
) -> None:
    ready(make_user, creator, clock, 600)
    payout_id = request_payout(creator).json()["payout"]["id"]
    connect.clear()
    connect.pay_out(creator.account_id, status="failed")
    assert forward_events(connect, "payout.failed") == [200]
    row = payout_row(payout_id)
    assert (row["status"], row["failure_code"], row["tokens_returned"]) == ("failed", "account_closed", 600)
    [reversal] = [r for r in connect.requests("/v1/transfers/") if r["path"].endswith("/reversals")]
    assert reversal["idempotency_key"] == f"payout:{payout_id}:reversal"
    assert connect.balance_of(creator.account_id) == 0  # the money is back on the platform
    assert state(creator.user) == (600, 0)
    assert forward_events(connect, "payout.failed") == [200]  # redelivered: nothing more
    connect_wait(connect, "transfer.reversed")
    assert forward_events(connect, "transfer.reversed") == [200]
    assert state(creator.user) == (600, 0)
    assert_books_balance()


def test_the_same_idempotency_key_replays_the_payout(
    make_user: MakeUser, creator: Creator, clock: Clock, connect: ConnectStandin
) -> None:
    ready(make_user, creator, clock, 1200)
    first = request_payout(creator, {"tokens": 600}, **{"Idempotency-Key": "payout-1"})
    again = request_payout(creator, {"tokens": 600}, **{"Idempotency-Key": "payout-1"})
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotency-Replayed"] == "true"
    assert again.json()["payout"]["id"] == first.json()["payout"]["id"]
    assert len(transfers(connect)) == 1 and state(creator.user) == (600, 0)
    other = request_payout(creator, {"tokens": 500}, **{"Idempotency-Key": "payout-1"})
    assert other.status_code == 422 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_concurrent_payout_requests_make_one_payout(
    make_user: MakeUser, creator: Creator, clock: Clock, connect: ConnectStandin
) -> None:
    ready(make_user, creator, clock, 600)
    n = 6
    with vercel_router.running() as server, httpx.Client(base_url=server.url, timeout=30) as client:
        client.get("/api/creator-payouts/dashboard", headers=creator.headers).raise_for_status()
        start = threading.Barrier(n, timeout=20)

        def one(_: int) -> tuple[int, str | None]:
            start.wait()
            r = client.post("/api/v1/creator-payouts/request-payout", json={}, headers=creator.headers)
            return r.status_code, r.json().get("code")

        with ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(one, range(n), timeout=60))
    assert sorted(answers, key=str) == [(200, None)] + [(400, "BELOW_MINIMUM")] * (n - 1), answers
    with db.transaction() as conn:
        count = conn.execute(
            "SELECT count(*) AS n FROM payouts WHERE creator_id = %s", (creator.id,)
        ).fetchone()
        assert count is not None and count["n"] == 1
        assert ledger.balance(conn, creator.id) == 0
    assert len(transfers(connect)) == 1
    assert_books_balance()


def test_admins_see_every_payout_in_the_stats(
    make_user: MakeUser, creator: Creator, clock: Clock, connect: ConnectStandin
) -> None:
    from tests.support.functions import client

    ready(make_user, creator, clock, 1100)
    request_payout(creator, {"tokens": 500})
    connect.platform_balance = 0
    request_payout(creator, {"tokens": 600})
    admin = make_user(role="admin")
    r = client("admin/stats.py").get("/api/admin/stats", headers=admin.headers)
    assert r.status_code == 200, r.text
    section = r.json()["payouts"]
    assert section["byStatus"]["in_transit"] == {"count": 1, "tokens": 500, "amountCents": 2500}
    assert section["byStatus"]["failed"]["count"] == 1
    assert [p["tokens"] for p in section["recent"]] == [600, 500]
    assert section["recent"][0]["creatorUsername"] == creator.user.username
    fan = make_user()
    assert client("admin/stats.py").get("/api/admin/stats", headers=fan.headers).status_code == 403


# --- helpers --------------------------------------------------------------------------------------------------


def connect_wait(connect: ConnectStandin, event_type: str, timeout_s: float = 5.0) -> None:
    """Stripe sends transfer.* a moment after answering: wait (bounded) for the stand-in to emit it."""
    import time

    deadline = time.monotonic() + timeout_s
    while not connect.events(event_type):
        assert time.monotonic() < deadline, f"no {event_type} in {timeout_s}s"
        time.sleep(0.02)


def payouts_user(row: Any) -> Any:
    from lib.users import User

    return User.model_validate(dict(row))
