"""Creator payouts as CreatorPayoutDashboard.js, PayoutSettings.js and WalletOptimized.js call them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from lib import db, payouts
from localdev.stripe_connect_standin import ConnectStandin
from tests.conftest import MakeUser
from tests.money.conftest import assert_books_balance
from tests.payouts.conftest import Clock, Creator, earn, onboard, state
from tests.support.functions import client

ORIGIN = "http://localhost:5173"


def call(method: str, path: str, file: str, who: Any, body: Any = None) -> Any:
    """What the page sends: lib/api.ts always sends Content-Type: application/json, a body only when given."""
    headers = {**who.headers, "Content-Type": "application/json"}
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    return client(file).request(method, f"/api/v1{path}", headers=headers, **kwargs)


def ok(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def is_time(value: Any) -> bool:
    return isinstance(value, str) and isinstance(datetime.fromisoformat(value), datetime)


def paid_creator(make_user: MakeUser, creator: Creator, clock: Clock, tokens: int = 600) -> None:
    earn(make_user, creator, tokens)
    clock.advance(days=8)


# --- dashboard, history, account -----------------------------------------------------------------------------


def test_dashboard_has_every_field_the_page_reads(
    make_user: MakeUser, creator: Creator, clock: Clock
) -> None:
    paid_creator(make_user, creator, clock, 700)
    ok(call("POST", "/creator-payouts/request-payout", "creator-payouts/request-payout.py", creator))
    earn(make_user, creator, 40)
    body = ok(call("GET", "/creator-payouts/dashboard", "creator-payouts/dashboard.py", creator))
    d = body["dashboard"]  # CreatorPayoutDashboard.js:42, 260-271
    assert isinstance(d["pending_usd"], float) and d["pending_usd"] == 2.0  # 700 paid out, 40 more since
    assert d["can_receive_payouts"] is True
    assert (d["available_tokens"], d["pending_payout_tokens"]) == (40, 700)
    (p,) = body["recentPayouts"]  # :320-361
    for key in ("net_payout_amount", "platform_fee_amount", "usd_amount"):
        assert isinstance(p[key], float), key
    assert (p["tokens_earned"], p["usd_amount"], p["net_payout_amount"], p["platform_fee_amount"]) == (
        700,
        35.0,
        35.0,
        0.0,
    )
    assert type(p["tokens_earned"]) is int and isinstance(p["status"], str) and isinstance(p["id"], str)
    assert all(is_time(p[k]) for k in ("payout_period_start", "payout_period_end", "created_at"))
    assert p["payout_period_start"] <= p["payout_period_end"] == p["created_at"]
    earnings = body["recentEarnings"]  # RecentEarnings :634-655
    assert [e["tokens_earned"] for e in earnings] == [40, 700]
    e = earnings[0]
    assert (e["earning_type"], e["description"], e["usd_value"]) == ("tip", "Tip", 2.0)
    assert isinstance(e["id"], str) and isinstance(e["fan_name"], str) and is_time(e["earned_at"])
    assert body["availableTokens"] == 40 and body["payouts"][0]["tokens"] == 700  # the earlier fields stay


def test_dashboard_before_onboarding_cannot_receive_payouts(make_user: MakeUser) -> None:
    body = ok(
        call("GET", "/creator-payouts/dashboard", "creator-payouts/dashboard.py", make_user(role="creator"))
    )
    assert body["dashboard"]["can_receive_payouts"] is False
    assert body["recentPayouts"] == [] and body["recentEarnings"] == []


def test_history_pages_with_total_pages(make_user: MakeUser, creator: Creator, clock: Clock) -> None:
    for _ in range(3):
        paid_creator(make_user, creator, clock, 500)
        ok(call("POST", "/creator-payouts/request-payout", "creator-payouts/request-payout.py", creator))
    body = ok(
        call("GET", "/creator-payouts/history", "creator-payouts/history.py", creator)
    )  # apiGet drops params
    assert body["totalPages"] == 1 and len(body["payouts"]) == 3
    first, second = (
        ok(
            client("creator-payouts/history.py").get(
                f"/api/creator-payouts/history?page={n}&limit=2", headers=creator.headers
            )
        )
        for n in (1, 2)
    )
    assert (first["totalPages"], first["hasMore"], len(first["payouts"])) == (2, True, 2)
    assert (second["page"], second["hasMore"], len(second["payouts"])) == (2, False, 1)
    p = second["payouts"][0]
    assert p["payout_period_start"] < p["payout_period_end"]  # the oldest payout: from sign-up
    assert first["payouts"][1]["payout_period_start"] == p["payout_period_end"]  # periods chain
    assert (
        client("creator-payouts/history.py")
        .get("/api/creator-payouts/history?page=0", headers=creator.headers)
        .status_code
        == 422
    )


def test_stripe_account_before_and_after_onboarding(make_user: MakeUser, connect: ConnectStandin) -> None:
    user = make_user(role="creator")
    body = ok(call("GET", "/creator-payouts/stripe-account", "creator-payouts/stripe-account.py", user))
    assert body == {"hasAccount": False, "account": None, "stripeAccount": None}
    onboard(connect, user)
    body = ok(call("GET", "/creator-payouts/stripe-account", "creator-payouts/stripe-account.py", user))
    assert body["hasAccount"] is True and body["account"]["payouts_enabled"] is True  # :61-64
    assert isinstance(body["account"]["charges_enabled"], bool) and body["account"]["id"].startswith("acct_")


def test_onboarding_without_a_body_returns_to_the_wallet(
    make_user: MakeUser, connect: ConnectStandin
) -> None:
    user = make_user(role="creator")
    # services/api.js:20 createStripeAccount(): apiPost with no body.
    body = ok(
        call(
            "POST", "/creator-payouts/stripe-account/create", "creator-payouts/stripe-account/create.py", user
        )
    )
    assert isinstance(body["onboardingUrl"], str) and body["onboardingUrl"] == body["url"]
    (link,) = [r for r in connect.requests("/v1/account_links")]
    assert link["params"]["return_url"] == f"{ORIGIN}/wallet?stripe=return"
    assert link["params"]["refresh_url"] == f"{ORIGIN}/wallet?stripe=refresh"


def test_account_link_takes_the_wallet_pages_snake_case_urls(
    make_user: MakeUser, connect: ConnectStandin
) -> None:
    user = make_user(role="creator")
    here = f"{ORIGIN}/wallet"
    body = ok(
        call(
            "POST",
            "/stripe/account-link",
            "stripe/account-link.py",
            user,
            {"refresh_url": here, "return_url": here},
        )
    )
    assert isinstance(body["url"], str) and body["url"].startswith(connect.url)  # PayoutSettings.js:278-296
    again = ok(
        call(
            "POST",
            "/stripe/account-link",
            "stripe/account-link.py",
            user,
            {"refresh_url": here, "return_url": here},
        )
    )
    assert again["accountId"] == body["accountId"]  # one account per creator
    bad = call(
        "POST",
        "/stripe/account-link",
        "stripe/account-link.py",
        user,
        {"refresh_url": here, "return_url": "https://evil.example/"},
    )
    assert (bad.status_code, bad.json()["code"]) == (422, "INVALID_RETURN_URL")
    assert call("POST", "/stripe/account-link", "stripe/account-link.py", make_user(), {}).status_code == 403


# --- request-payout, /stripe/payouts -------------------------------------------------------------------------


def test_request_payout_without_a_body_answers_success_and_its_data_mirror(
    make_user: MakeUser, creator: Creator, clock: Clock
) -> None:
    paid_creator(make_user, creator, clock)
    body = ok(call("POST", "/creator-payouts/request-payout", "creator-payouts/request-payout.py", creator))
    assert (
        body["success"] is True and body["data"]["success"] is True
    )  # services/api.js wraps; the page reads .data.success
    assert body["payout"]["tokens"] == 600 and body["data"]["payout"] == body["payout"]
    assert_books_balance()


def test_stripe_payouts_lists_payouts_as_stripe_payout_objects(
    make_user: MakeUser, creator: Creator, clock: Clock
) -> None:
    paid_creator(make_user, creator, clock)
    ok(call("POST", "/creator-payouts/request-payout", "creator-payouts/request-payout.py", creator))
    (p,) = ok(call("GET", "/stripe/payouts", "stripe/payouts.py", creator))[
        "payouts"
    ]  # PayoutSettings.js:474-498
    assert type(p["amount"]) is int and p["amount"] == 3000
    assert (
        type(p["arrival_date"]) is int and isinstance(p["description"], str) and isinstance(p["status"], str)
    )


# --- settings and withdrawal settings ------------------------------------------------------------------------


def test_payout_settings_round_trip_as_the_page_sends_them(make_user: MakeUser) -> None:
    user = make_user(role="creator")
    got = ok(call("GET", "/creator-payouts/settings", "creator-payouts/settings.py", user))
    assert got["payout_enabled"] is True and got["payout_schedule"] == "biweekly"
    assert isinstance(got["minimum_payout_amount"], float) and got["tax_form_submitted"] is False
    # PayoutSettings.js handleSave: sends back the whole object it got, edited.
    saved = ok(
        call(
            "PUT",
            "/creator-payouts/settings",
            "creator-payouts/settings.py",
            user,
            {**got, "minimum_payout_amount": 50, "payout_schedule": "weekly"},
        )
    )
    assert (saved["minimum_payout_amount"], saved["payout_schedule"]) == (50.0, "weekly")
    assert ok(call("GET", "/creator-payouts/settings", "creator-payouts/settings.py", user)) == saved
    bad = call(
        "PUT", "/creator-payouts/settings", "creator-payouts/settings.py", user, {"payout_schedule": "hourly"}
    )
    assert bad.status_code == 422


def test_withdrawal_settings_keep_the_reserved_tokens_out_of_payouts(
    make_user: MakeUser, creator: Creator, clock: Clock
) -> None:
    paid_creator(make_user, creator, clock, 900)
    got = ok(call("GET", "/payments/withdrawal-settings", "payments/withdrawal-settings.py", creator))
    s = got["settings"]  # PayoutSettings.js:86-92
    assert (s["autoWithdrawEnabled"], s["reservedBalance"], s["withdrawableBalance"]) == (False, 0, 900)
    put = ok(
        call(
            "PUT",
            "/payments/withdrawal-settings",
            "payments/withdrawal-settings.py",
            creator,
            {"reservedBalance": 300},
        )
    )
    assert (put["settings"]["reservedBalance"], put["settings"]["withdrawableBalance"]) == (300, 600)
    assert isinstance(put["message"], str)
    dash = ok(call("GET", "/creator-payouts/dashboard", "creator-payouts/dashboard.py", creator))
    assert dash["dashboard"]["pending_usd"] == 30.0
    payout = ok(call("POST", "/creator-payouts/request-payout", "creator-payouts/request-payout.py", creator))
    assert payout["payout"]["tokens"] == 600 and state(creator.user) == (300, 0)
    for bad in ({"reservedBalance": -1}, {"reservedBalance": 1.5}, {"autoWithdrawEnabled": "yes"}):
        assert (
            call(
                "PUT", "/payments/withdrawal-settings", "payments/withdrawal-settings.py", creator, bad
            ).status_code
            == 422
        )
    assert_books_balance()


# --- Release Funds intents and the payout run ---------------------------------------------------------------

INTENT = "creator-payouts/intent.py"


def test_intent_lifecycle_as_both_pages_read_it(make_user: MakeUser, creator: Creator) -> None:
    none = ok(call("GET", "/creator-payouts/intent", INTENT, creator))
    assert none["ok"] is True and none["intent"] is None and none["hasIntent"] is False
    assert (
        isinstance(none["nextCycleInfo"]["description"], str)
        and type(none["nextCycleInfo"]["daysUntil"]) is int
    )
    queued = ok(call("POST", "/creator-payouts/intent", INTENT, creator))  # no body, like both pages
    assert queued["ok"] is True and queued["intent"]["status"] == "pending"  # WalletOptimized.js:446-448
    assert (
        queued["hasIntent"] is True and queued["currentIntent"] == queued["intent"]
    )  # PayoutSettings.js:525
    again = ok(call("POST", "/creator-payouts/intent", INTENT, creator))
    assert again["intent"]["id"] == queued["intent"]["id"]  # a double press queues once
    assert (
        ok(call("GET", "/creator-payouts/intent", INTENT, creator))["intent"]["id"] == queued["intent"]["id"]
    )
    cancelled = ok(call("DELETE", "/creator-payouts/intent", INTENT, creator))
    assert cancelled["ok"] is True and cancelled["intent"] is None and cancelled["hasIntent"] is False
    assert ok(call("GET", "/creator-payouts/intent", INTENT, creator))["intent"] is None
    assert ok(call("DELETE", "/creator-payouts/intent", INTENT, creator))["ok"] is True


def test_intent_needs_finished_onboarding(make_user: MakeUser) -> None:
    r = call("POST", "/creator-payouts/intent", INTENT, make_user(role="creator"))
    assert (r.status_code, r.json()["code"]) == (400, "PAYOUTS_NOT_ENABLED")
    assert isinstance(r.json()["error"], str)  # WalletOptimized shows j.error


def test_the_payout_run_honours_a_queued_intent_once(
    make_user: MakeUser, creator: Creator, clock: Clock, connect: ConnectStandin
) -> None:
    earn(make_user, creator, 600)
    ok(call("POST", "/creator-payouts/intent", INTENT, creator))
    assert payouts.run_payout_intents(clock.now()) == {"checked": 1, "BELOW_MINIMUM": 1}  # still held
    still = ok(call("GET", "/creator-payouts/intent", INTENT, creator))["intent"]
    assert (still["status"], still["lastOutcome"]) == ("pending", "BELOW_MINIMUM")
    clock.advance(days=8)
    assert payouts.run_payout_intents(clock.now()) == {"checked": 1, "paid": 1}
    done = ok(call("GET", "/creator-payouts/intent", INTENT, creator))
    assert (
        done["currentIntent"]["status"] == "consumed" and done["currentIntent"]["payoutId"]
    )  # PayoutSettings.js:557
    assert state(creator.user) == (0, 0)
    assert payouts.run_payout_intents(clock.now()) == {"checked": 0}  # consumed: not paid twice
    transfers = [r for r in connect.requests("/v1/transfers") if r["method"] == "POST"]
    assert len(transfers) == 1 and transfers[0]["params"]["amount"] == "3000"
    clock.advance(days=2)
    assert (
        ok(call("GET", "/creator-payouts/intent", INTENT, creator))["intent"] is None
    )  # Release Funds again
    assert_books_balance()


def test_the_payout_run_respects_reserve_minimum_and_pause(
    make_user: MakeUser, creator: Creator, clock: Clock
) -> None:
    paid_creator(make_user, creator, clock, 1000)
    ok(
        call(
            "PUT",
            "/creator-payouts/settings",
            "creator-payouts/settings.py",
            creator,
            {"minimum_payout_amount": 40},
        )
    )
    ok(call("POST", "/creator-payouts/intent", INTENT, creator))
    assert payouts.run_payout_intents(clock.now())["paid"] == 1  # $50 available >= $40
    earn(make_user, creator, 900)
    clock.advance(days=8)
    ok(
        call(
            "PUT",
            "/payments/withdrawal-settings",
            "payments/withdrawal-settings.py",
            creator,
            {"reservedBalance": 200},
        )
    )
    ok(call("POST", "/creator-payouts/intent", INTENT, creator))
    assert payouts.run_payout_intents(clock.now()) == {"checked": 1, "BELOW_MINIMUM": 1}  # 700 = $35 < $40
    ok(
        call(
            "PUT",
            "/creator-payouts/settings",
            "creator-payouts/settings.py",
            creator,
            {"minimum_payout_amount": 0, "payout_enabled": False},
        )
    )
    assert payouts.run_payout_intents(clock.now()) == {"checked": 1, "PAYOUTS_PAUSED": 1}
    ok(
        call(
            "PUT",
            "/creator-payouts/settings",
            "creator-payouts/settings.py",
            creator,
            {"payout_enabled": True},
        )
    )
    assert payouts.run_payout_intents(clock.now()) == {"checked": 1, "paid": 1}
    assert state(creator.user) == (200, 0)  # the reserved tokens stay
    assert_books_balance()


def test_auto_withdraw_pays_every_run_without_an_intent(
    make_user: MakeUser, creator: Creator, clock: Clock
) -> None:
    paid_creator(make_user, creator, clock, 600)
    ok(
        call(
            "PUT",
            "/payments/withdrawal-settings",
            "payments/withdrawal-settings.py",
            creator,
            {"autoWithdrawEnabled": True},
        )
    )
    assert payouts.run_payout_intents(clock.now()) == {"checked": 1, "paid": 1}
    assert payouts.run_payout_intents(clock.now()) == {"checked": 1, "BELOW_MINIMUM": 0} | {
        "BELOW_MINIMUM": 1
    }
    with db.transaction() as conn:
        assert conn.execute(
            "SELECT count(*) AS n FROM payouts WHERE creator_id = %s", (creator.id,)
        ).fetchone() == {"n": 1}


@pytest.mark.parametrize(
    ("method", "path", "file"),
    [
        ("GET", "/creator-payouts/intent", INTENT),
        ("GET", "/creator-payouts/settings", "creator-payouts/settings.py"),
        ("GET", "/creator-payouts/history", "creator-payouts/history.py"),
        ("GET", "/creator-payouts/stripe-account", "creator-payouts/stripe-account.py"),
        ("GET", "/payments/withdrawal-settings", "payments/withdrawal-settings.py"),
        ("GET", "/stripe/payouts", "stripe/payouts.py"),
    ],
)
def test_payout_pages_are_for_creators(make_user: MakeUser, method: str, path: str, file: str) -> None:
    r = call(method, path, file, make_user())
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
