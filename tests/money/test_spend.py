"""lib.spend.charge: the one rule every item purchase shares (once per key, 402 with both spellings, events)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from lib import db, ledger, spend
from lib.errors import PaymentRequired
from tests.conftest import MakeUser

if TYPE_CHECKING:
    from tests.conftest import TestUser


def _charge(fan: TestUser, creator: TestUser, amount: int, key: str) -> spend.Charge:
    with db.transaction() as conn:
        return spend.charge(
            conn,
            payer_id=fan.id,
            payee_id=creator.id,
            amount=amount,
            kind="content",
            reference_type="content",
            reference_id="item-1",
            idempotency_key=key,
            reason="content",
        )


def _balance(user: TestUser) -> int:
    with db.transaction() as conn:
        return ledger.balance(conn, user.id)


def _events(user: TestUser) -> list[dict[str, Any]]:
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT payload FROM realtime_outbox WHERE channel = %(c)s AND event = 'balance:update' ORDER BY id",
            {"c": f"private-user-{user.id}"},
        ).fetchall()
    return [r["payload"] for r in rows]


def test_a_charge_moves_the_price_once_and_tells_both_sides(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    paid = _charge(fan, creator, 30, "content:item-1:buyer:a")
    assert paid.charged and paid.amount == 30 and paid.balance == 70 and paid.entry_id is not None
    assert paid.creator_cut + paid.platform_fee == 30
    assert _balance(fan) == 70 and _balance(creator) == paid.creator_cut
    assert [(e["delta"], e["reason"]) for e in _events(fan)] == [(-30, "content_sent")]
    assert [(e["delta"], e["reason"]) for e in _events(creator)] == [(paid.creator_cut, "content_received")]


def test_the_same_key_again_moves_nothing_even_when_the_balance_is_now_short(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=40), make_user(role="creator")
    assert _charge(fan, creator, 30, "k1").charged
    again = _charge(fan, creator, 30, "k1")  # 10 left: a retry must not answer 402 for what was already paid
    assert not again.charged and again.balance == 10
    assert _balance(fan) == 10 and len(_events(fan)) == 1


def test_a_short_balance_is_402_with_both_spellings_and_nothing_moves(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=25), make_user(role="creator")
    with pytest.raises(PaymentRequired) as refused:
        _charge(fan, creator, 30, "k2")
    assert refused.value.code == "INSUFFICIENT_TOKENS"
    assert refused.value.extra == {
        "required": 30,
        "current": 25,
        "needed": 5,
        "current_balance": 25,
        "required_amount": 30,
    }
    assert _balance(fan) == 25 and _balance(creator) == 0 and _events(fan) == []


def test_a_free_item_charges_nothing(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=5), make_user(role="creator")
    free = _charge(fan, creator, 0, "k3")
    assert not free.charged and free.amount == 0 and free.balance == 5 and _events(fan) == []


def test_twenty_parallel_requests_for_one_key_pay_once(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    outcomes: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def buy() -> None:
        start.wait()
        paid = _charge(fan, creator, 30, "content:item-1:buyer:race")
        with lock:
            outcomes.append(paid.charged)

    threads = [threading.Thread(target=buy) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [False] * 19 + [True]
    assert _balance(fan) == 70
