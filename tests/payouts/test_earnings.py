"""Earnings in the ledger: held for the reserve window, then available; purchased tokens are never payable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from lib import db, ledger, payouts
from tests.conftest import MakeUser
from tests.money.conftest import assert_books_balance
from tests.payouts.conftest import Clock, Creator, backdate, buy, dashboard, earn, tip
from tests.support.functions import client


def earnings(creator: Creator) -> payouts.Earnings:
    with db.transaction() as conn:
        return payouts.earnings_of(conn, creator.id, payouts.clock.now())


def test_earnings_are_held_for_the_reserve_window_then_become_available(
    make_user: MakeUser, creator: Creator, clock: Clock
) -> None:
    earn(make_user, creator, 600)
    body = dashboard(creator)
    assert (body["heldTokens"], body["availableTokens"], body["heldCents"]) == (600, 0, 3000)
    release = datetime.fromisoformat(body["nextReleaseAt"])
    assert abs(release - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
    clock.advance(days=6, hours=23)
    assert (earnings(creator).held, earnings(creator).available) == (600, 0)
    clock.advance(hours=2)
    body = dashboard(creator)
    assert (body["heldTokens"], body["availableTokens"], body["availableCents"]) == (0, 600, 3000)
    assert body["nextReleaseAt"] is None
    assert_books_balance()


def test_each_earning_has_its_own_window(make_user: MakeUser, creator: Creator, clock: Clock) -> None:
    earn(make_user, creator, 300)
    backdate(creator, 4)
    earn(make_user, creator, 200)
    clock.advance(days=3, hours=1)  # the first is 7 days old now, the second 3
    mine = earnings(creator)
    assert (mine.available, mine.held) == (300, 200)
    assert mine.next_release_at is not None
    assert abs(mine.next_release_at - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)


def test_reserve_days_is_a_setting(
    make_user: MakeUser, creator: Creator, clock: Clock, set_env: Callable[[str, str], None]
) -> None:
    set_env("PAYOUT_RESERVE_DAYS", "2")
    earn(make_user, creator, 100)
    clock.advance(days=1)
    assert earnings(creator).held == 100
    clock.advance(days=1, minutes=1)
    assert (earnings(creator).held, earnings(creator).available) == (0, 100)
    assert dashboard(creator)["reserveDays"] == 2


def test_purchased_tokens_are_never_payable(creator: Creator, clock: Clock) -> None:
    buy(creator.user, 1000)
    clock.advance(days=60)
    mine = earnings(creator)
    assert (mine.balance, mine.held, mine.available) == (1000, 0, 0)


def test_spending_takes_purchased_tokens_first_then_available_then_held(
    make_user: MakeUser, creator: Creator
) -> None:
    other = make_user(role="creator")
    buy(creator.user, 100)
    earn(make_user, creator, 300)
    backdate(creator, 8)  # those 300 are available
    earn(make_user, creator, 200)  # these are held
    assert (earnings(creator).available, earnings(creator).held) == (300, 200)
    tip(creator.user, other, 150)  # the 100 purchased tokens, then 50 available
    mine = earnings(creator)
    assert (mine.balance, mine.available, mine.held) == (450, 250, 200)
    tip(creator.user, other, 300)  # the other 250 available, then 50 held
    mine = earnings(creator)
    assert (mine.balance, mine.available, mine.held) == (150, 0, 150)


def test_available_never_exceeds_the_balance(make_user: MakeUser, creator: Creator, clock: Clock) -> None:
    other = make_user(role="creator")
    earn(make_user, creator, 400)
    clock.advance(days=8)
    tip(creator.user, other, 390)
    mine = earnings(creator)
    assert (mine.balance, mine.available, mine.held) == (10, 10, 0)


def test_dashboard_shape_before_onboarding(make_user: MakeUser) -> None:
    user = make_user(role="creator")
    body = client("creator-payouts/dashboard.py").get(
        "/api/v1/creator-payouts/dashboard", headers=user.headers
    )
    assert body.status_code == 200, body.text
    data = body.json()
    assert {
        "availableTokens",
        "heldTokens",
        "paidTokens",
        "pendingTokens",
        "debtTokens",
        "availableCents",
        "payouts",
        "stripeAccount",
        "minimumPayoutTokens",
        "reserveDays",
        "tokenUsdValue",
    } <= set(data)
    assert data["stripeAccount"] is None and data["payouts"] == []
    assert (data["minimumPayoutTokens"], data["reserveDays"], data["tokenUsdValue"]) == (500, 7, 0.05)


def test_fans_have_no_payout_dashboard(make_user: MakeUser) -> None:
    fan = make_user()
    r = client("creator-payouts/dashboard.py").get("/api/creator-payouts/dashboard", headers=fan.headers)
    assert r.status_code == 403


def test_a_platform_fee_is_not_the_creators_to_pay_out(
    make_user: MakeUser, creator: Creator, clock: Clock, set_env: Callable[[str, str], None]
) -> None:
    set_env("PLATFORM_FEE_PERCENT", "20")
    earn(make_user, creator, 1000)
    clock.advance(days=8)
    assert earnings(creator).available == 800
    with db.transaction() as conn:
        assert ledger.balance(conn, ledger.PLATFORM_USER_ID) == 200
