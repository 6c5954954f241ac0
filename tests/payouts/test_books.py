"""The cleanup cron's books cover payouts: payouts match their ledger rows, lots never exceed balances."""

from __future__ import annotations

from lib import cleanup, db, ledger
from tests.conftest import MakeUser
from tests.money.conftest import books, charge_refunded
from tests.payouts.conftest import Clock, Creator, buy, deliver, request_payout, tip


def test_the_cron_books_hold_through_earning_payout_and_a_refund_after_it(
    make_user: MakeUser, creator: Creator, clock: Clock
) -> None:
    fan = make_user()
    pi = buy(fan, 800)
    tip(fan, creator.user, 700)
    clock.advance(days=8)
    assert request_payout(creator).status_code == 200
    assert deliver(charge_refunded(pi, 8000, 8000), secret="whsec_test_digis_local_secret") == 200
    report = cleanup.run()
    assert report.steps["ledger"].result["ok"] is True, report.steps["ledger"]
    full = books()
    assert full.ok and full.payouts_drift == 0 and full.lot_excess == []
    # 800 bought and refunded, 700 paid out, 700 owed back by the creator: (0 - 700) == (0 + -700)
    assert (full.balances_total, full.debts_total, full.payments_total, full.outside_total) == (
        0,
        700,
        0,
        -700,
    )


def test_a_payout_the_ledger_does_not_explain_is_drift(
    make_user: MakeUser, creator: Creator, clock: Clock
) -> None:
    fan = make_user()
    buy(fan, 600)
    tip(fan, creator.user, 600)
    clock.advance(days=8)
    payout_id = request_payout(creator).json()["payout"]["id"]
    with db.transaction() as conn:
        conn.execute(
            "UPDATE payouts SET tokens = tokens + 5, amount_cents = amount_cents + 25 WHERE id = %s",
            (payout_id,),
        )
    report = books()
    assert not report.ok and report.payouts_drift == 5


def test_purchase_lots_above_the_balance_are_drift(make_user: MakeUser) -> None:
    fan = make_user()
    buy(fan, 100)
    with db.transaction() as conn:
        conn.execute("UPDATE purchase_lots SET remaining = remaining + 1 WHERE user_id = %s", (fan.id,))
    report = books()
    assert not report.ok and [(d.user_id, d.cached, d.ledger) for d in report.lot_excess] == [
        (fan.id, 100, 101)
    ]


def test_every_debit_that_is_not_a_transfer_keeps_lots_within_the_balance(make_user: MakeUser) -> None:
    fan = make_user()
    buy(fan, 100)
    buy(fan, 50)
    with db.transaction() as conn:
        ledger.debit(
            conn,
            user_id=fan.id,
            amount=120,
            kind="adjustment",
            reference_type="test",
            reference_id="t",
            idempotency_key="adjust-1",
        )
        lots = [
            r["remaining"]
            for r in conn.execute(
                "SELECT remaining FROM purchase_lots WHERE user_id = %s ORDER BY seq", (fan.id,)
            )
        ]
    assert lots == [0, 30]  # the oldest lot is used up first
    assert books().ok
