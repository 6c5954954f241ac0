"""Refunds and disputes reverse the creator earnings a purchase paid for: held first, then available, then debt."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from lib import db, ledger, payouts
from tests.conftest import MakeUser
from tests.money.conftest import assert_books_balance, charge_refunded, dispute
from tests.payouts.conftest import (
    Clock,
    Creator,
    backdate,
    buy,
    dashboard,
    deliver,
    earn,
    request_payout,
    state,
    tip,
)

WEBHOOK_SECRET = "whsec_test_digis_local_secret"


def refund(pi: str, cents: int, amount: int) -> None:
    assert deliver(charge_refunded(pi, cents, amount), secret=WEBHOOK_SECRET) == 200


def sources(payment_intent: str) -> list[dict[str, Any]]:
    with db.transaction() as conn:
        return [
            dict(r)
            for r in conn.execute(
                """SELECT s.payee_id, s.tokens FROM earning_sources s JOIN payments p ON p.id = s.payment_id
                   WHERE p.stripe_payment_intent_id = %s ORDER BY s.seq""",
                (payment_intent,),
            )
        ]


def test_a_refund_takes_the_unspent_tokens_and_reverses_the_creators_earnings(
    make_user: MakeUser, creator: Creator
) -> None:
    fan = make_user()
    pi = buy(fan, 500)
    tip(fan, creator.user, 300)
    refund(pi, 5000, 5000)
    assert state(fan) == (0, 0)  # nothing left for the fan to owe: the 300 came back from the creator
    assert state(creator.user) == (0, 0)
    body = dashboard(creator)
    assert (body["heldTokens"], body["availableTokens"], body["debtTokens"]) == (0, 0, 0)
    with db.transaction() as conn:
        kinds = [
            r["type"]
            for r in conn.execute(
                "SELECT type FROM token_transactions WHERE user_id = %s ORDER BY seq", (creator.id,)
            )
        ]
    assert kinds == ["tip", "earning_reversal"]
    assert_books_balance()


def test_spending_takes_purchases_oldest_first_and_a_refund_reaches_only_what_it_paid_for(
    make_user: MakeUser,
) -> None:
    fan, first, second = make_user(), make_user(role="creator"), make_user(role="creator")
    a, b = buy(fan, 100), buy(fan, 100)
    tip(fan, first, 150)  # all of A, then 50 of B
    tip(fan, second, 50)  # the rest of B
    assert sources(a) == [{"payee_id": first.id, "tokens": 100}]
    assert sources(b) == [{"payee_id": first.id, "tokens": 50}, {"payee_id": second.id, "tokens": 50}]
    refund(b, 1000, 1000)
    assert (state(fan), state(first), state(second)) == ((0, 0), (100, 0), (0, 0))
    assert_books_balance()


def test_a_partial_refund_takes_unspent_tokens_before_any_earnings(
    make_user: MakeUser, creator: Creator
) -> None:
    fan = make_user()
    pi = buy(fan, 500)
    tip(fan, creator.user, 300)
    refund(pi, 2000, 5000)  # 200 tokens: exactly what the fan still has of this purchase
    assert state(fan) == (0, 0)
    assert state(creator.user) == (300, 0)
    refund(pi, 3000, 5000)  # 100 more: now from the earnings
    assert state(creator.user) == (200, 0)
    assert_books_balance()


def test_held_earnings_are_reversed_before_available_ones(make_user: MakeUser, creator: Creator) -> None:
    fan = make_user()
    pi = buy(fan, 1000)
    tip(fan, creator.user, 600)
    backdate(creator, 8)  # the first 600 are available
    tip(fan, creator.user, 400)  # held
    refund(pi, 5000, 10_000)  # 500 tokens back: all 400 held, then 100 of the available
    with db.transaction() as conn:
        mine = payouts.earnings_of(conn, creator.id, payouts.clock.now())
    assert (mine.held, mine.available, mine.balance) == (0, 500, 500)
    assert_books_balance()


def test_refund_after_a_payout_is_creator_debt_that_later_earnings_repay_before_any_payout(
    make_user: MakeUser, creator: Creator, clock: Clock
) -> None:
    fan = make_user()
    pi = buy(fan, 600)
    tip(fan, creator.user, 600)
    clock.advance(days=8)
    r = request_payout(creator)
    assert r.status_code == 200, r.text
    assert state(creator.user) == (0, 0)
    refund(pi, 6000, 6000)  # after the reserve window: the creator was paid out already
    assert state(creator.user) == (0, 600)
    assert dashboard(creator)["debtTokens"] == 600
    earn(make_user, creator, 400)  # repays 400 of the debt at once
    assert state(creator.user) == (0, 200)
    clock.advance(days=8)
    body = dashboard(creator)
    assert (body["availableTokens"], body["debtTokens"]) == (0, 200)
    assert request_payout(creator, {"tokens": 500}).json()["code"] == "INSUFFICIENT_AVAILABLE_TOKENS"
    earn(make_user, creator, 700)
    assert state(creator.user) == (500, 0)
    clock.advance(days=8)
    assert dashboard(creator)["availableTokens"] == 500
    r = request_payout(creator)
    assert r.status_code == 200 and r.json()["payout"]["tokens"] == 500
    assert_books_balance()


def test_a_platform_fee_comes_back_from_the_platform_account(
    make_user: MakeUser, set_env: Callable[[str, str], None]
) -> None:
    set_env("PLATFORM_FEE_PERCENT", "15")
    fan, creator = make_user(), make_user(role="creator")
    pi = buy(fan, 100)
    tip(fan, creator, 100)
    assert state(creator) == (85, 0) and state(ledger.PLATFORM_USER_ID) == (15, 0)
    refund(pi, 500, 1000)  # half: 50 tokens, all of them spent on the tip: 42.5 -> 43 cut, 7 fee
    assert state(creator) == (42, 0) and state(ledger.PLATFORM_USER_ID) == (8, 0)
    refund(pi, 1000, 1000)
    assert state(creator) == (0, 0) and state(ledger.PLATFORM_USER_ID) == (0, 0)
    assert_books_balance()


def test_a_won_dispute_gives_the_creator_their_earnings_back(make_user: MakeUser, creator: Creator) -> None:
    fan = make_user()
    pi = buy(fan, 500)
    tip(fan, creator.user, 500)
    assert deliver(dispute("created", "dp_payout_1", pi, 5000), secret=WEBHOOK_SECRET) == 200
    assert state(creator.user) == (0, 0) and state(fan) == (0, 0)
    assert dashboard(creator)["heldTokens"] == 0
    assert deliver(dispute("closed", "dp_payout_1", pi, 5000, status="won"), secret=WEBHOOK_SECRET) == 200
    assert state(creator.user) == (500, 0) and state(fan) == (0, 0)
    assert dashboard(creator)["heldTokens"] == 500  # back in its own reserve bucket
    assert_books_balance()


def test_a_won_dispute_after_a_payout_repays_the_creators_debt(
    make_user: MakeUser, creator: Creator, clock: Clock
) -> None:
    fan = make_user()
    pi = buy(fan, 500)
    tip(fan, creator.user, 500)
    clock.advance(days=8)
    assert request_payout(creator).status_code == 200
    deliver(dispute("created", "dp_payout_2", pi, 5000), secret=WEBHOOK_SECRET)
    assert state(creator.user) == (0, 500)
    deliver(dispute("closed", "dp_payout_2", pi, 5000, status="won"), secret=WEBHOOK_SECRET)
    assert state(creator.user) == (0, 0)
    assert dashboard(creator)["availableTokens"] == 0  # those tokens were paid out already
    assert_books_balance()


def test_tokens_that_left_without_a_creator_fall_back_to_the_buyers_debt(make_user: MakeUser) -> None:
    fan = make_user()
    pi = buy(fan, 100)
    with db.transaction() as conn:
        ledger.debit(
            conn,
            user_id=fan.id,
            amount=60,
            kind="adjustment",
            reference_type="test",
            reference_id="admin",
            idempotency_key=uuid.uuid4().hex,
        )
    refund(pi, 1000, 1000)
    assert state(fan) == (0, 60)
    assert_books_balance()


def test_the_billing_sweeps_batch_transfers_record_provenance(make_user: MakeUser) -> None:
    fan, creator = make_user(), make_user(role="creator")
    pi = buy(fan, 25)
    with db.transaction() as conn:
        outcomes = ledger.transfer_many(
            conn,
            [
                ledger.TransferRequest(fan.id, creator.id, 10, "call", "call", "c", f"call:x:minute:{n}")
                for n in (1, 2, 3)
            ],
        )
    assert [o.status for o in outcomes] == ["ok", "ok", "insufficient"]
    assert sources(pi) == [{"payee_id": creator.id, "tokens": 10}, {"payee_id": creator.id, "tokens": 10}]
    refund(pi, 250, 250)
    assert state(fan) == (0, 0) and state(creator) == (0, 0)
    assert_books_balance()


def test_purchases_before_provenance_keep_the_old_rule(make_user: MakeUser) -> None:
    fan, creator = make_user(), make_user(role="creator")
    pi = buy(fan, 50)
    with db.transaction() as conn:
        conn.execute(
            "UPDATE purchase_lots SET remaining = 0 WHERE user_id = %s", (fan.id,)
        )  # as if credited earlier
    tip(fan, creator, 40)  # lots say nothing: no provenance recorded
    refund(pi, 500, 500)
    assert state(fan) == (0, 40) and state(creator) == (40, 0)
    assert_books_balance()
