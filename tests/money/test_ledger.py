"""lib.ledger: transfers, fees, idempotency, debts, batches, the database's own guards, reconciliation."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib import db, ledger
from lib.errors import PaymentRequired
from tests.conftest import MakeUser
from tests.money.conftest import assert_books_balance, books


def tip(conn: db.Conn, a: Any, b: Any, amount: int, key: str | None = None) -> ledger.Transfer | None:
    return ledger.transfer(
        conn,
        from_user=a.id,
        to_user=b.id,
        amount=amount,
        kind="tip",
        reference_type="test",
        reference_id="t",
        idempotency_key=key or uuid.uuid4().hex,
    )


def test_transfer_moves_tokens_and_writes_one_posting_per_side(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    with db.transaction() as conn:
        moved = tip(conn, fan, creator, 30)
        assert moved is not None
        rows = conn.execute(
            "SELECT user_id, type, amount, balance_after, counterparty_id FROM token_transactions"
            " WHERE entry_id = %(e)s ORDER BY amount",
            {"e": moved.id},
        ).fetchall()
    assert (moved.amount, moved.creator_cut, moved.platform_fee) == (30, 30, 0)
    assert (moved.from_balance, moved.to_balance) == (70, 30)
    assert [(r["user_id"], r["amount"], r["balance_after"]) for r in rows] == [
        (fan.id, -30, 70),
        (creator.id, 30, 30),
    ]
    assert rows[0]["counterparty_id"] == creator.id
    assert_books_balance()


def test_reused_idempotency_key_returns_none_without_a_second_effect(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    with db.transaction() as conn:
        assert tip(conn, fan, creator, 10, key="same") is not None
    with db.transaction() as conn:
        assert tip(conn, fan, creator, 10, key="same") is None
        assert ledger.balance(conn, fan.id) == 90
        assert ledger.balance(conn, creator.id) == 10
    assert_books_balance()


def test_insufficient_balance_is_402_with_current_and_required(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=5), make_user(role="creator")
    with db.transaction() as conn, pytest.raises(PaymentRequired) as err:
        tip(conn, fan, creator, 6, key="short")
    assert err.value.code == "INSUFFICIENT_TOKENS"
    assert err.value.extra == {"current_balance": 5, "required_amount": 6}
    with db.transaction() as conn:
        # The refused attempt used nothing up: the same key works once the balance allows it.
        assert ledger.balance(conn, fan.id) == 5
        assert tip(conn, fan, creator, 5, key="short") is not None


@pytest.mark.parametrize(
    ("percent", "amount", "cut", "fee"),
    [
        ("0", 7, 7, 0),
        ("20", 10, 8, 2),
        ("20", 7, 6, 1),
        ("12.5", 9, 8, 1),
        ("33.3", 1, 1, 0),
        ("100", 3, 0, 3),
    ],
)
def test_fee_is_floored_so_debit_equals_cut_plus_fee(percent: str, amount: int, cut: int, fee: int) -> None:
    assert ledger.split_fee(amount, Decimal(percent)) == (cut, fee)


@given(amount=st.integers(1, 10**9), percent=st.decimals(0, 100, places=2))
def test_split_always_adds_up_and_favours_the_creator(amount: int, percent: Decimal) -> None:
    cut, fee = ledger.split_fee(amount, percent)
    assert cut + fee == amount
    assert 0 <= fee <= amount * percent / 100 < fee + 1


def test_platform_fee_goes_to_the_platform_account(
    make_user: MakeUser, set_env: Callable[[str, str], None]
) -> None:
    set_env("PLATFORM_FEE_PERCENT", "20")
    fan, creator = (
        make_user(balance=100),
        make_user(role="creator"),
    )  # the truncation removed the platform row
    with db.transaction() as conn:
        moved = tip(conn, fan, creator, 7)
        assert moved is not None and (moved.creator_cut, moved.platform_fee) == (6, 1)
        assert ledger.balance(conn, ledger.PLATFORM_USER_ID) == 1
        assert ledger.balance(conn, fan.id) + ledger.balance(conn, creator.id) + 1 == 100
    assert_books_balance()


def test_credit_pays_debt_first(make_user: MakeUser) -> None:
    fan = make_user(balance=30)
    with db.transaction() as conn:
        clawed = ledger.debit(
            conn,
            user_id=fan.id,
            amount=100,
            kind="refund",
            reference_type="test",
            reference_id="r",
            idempotency_key="claw",
            allow_debt=True,
        )
        assert clawed is not None
        assert (clawed.balance_change, clawed.debt_change, clawed.debt_after) == (-30, 70, 70)
        paid = ledger.credit(
            conn,
            user_id=fan.id,
            amount=50,
            kind="adjustment",
            reference_type="t",
            reference_id="c",
            idempotency_key="c1",
        )
        assert paid is not None and (paid.balance_after, paid.debt_after) == (0, 20)
        paid = ledger.credit(
            conn,
            user_id=fan.id,
            amount=50,
            kind="adjustment",
            reference_type="t",
            reference_id="c",
            idempotency_key="c2",
        )
        assert paid is not None and (paid.balance_after, paid.debt_after) == (30, 0)
    report = books()
    # The refund row counts as a payment flow with no payment behind it: only the conservation sum notices.
    assert not report.balance_drift and not report.debt_drift and not report.chain_breaks
    assert report.internal_net == 0


def test_transfer_to_an_indebted_creator_pays_the_debt(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=50), make_user(role="creator")
    with db.transaction() as conn:
        ledger.debit(
            conn,
            user_id=creator.id,
            amount=15,
            kind="adjustment",
            reference_type="t",
            reference_id="d",
            idempotency_key="d",
            allow_debt=True,
        )
        moved = tip(conn, fan, creator, 20)
        assert moved is not None and moved.to_balance == 5
        assert ledger.debt(conn, creator.id) == 0
    assert_books_balance()


def test_opposite_transfers_in_parallel_do_not_deadlock(make_user: MakeUser) -> None:
    a, b = make_user(role="creator", balance=1000), make_user(role="creator", balance=1000)
    errors: list[BaseException] = []
    start = threading.Barrier(2, timeout=10)

    def worker(src: Any, dst: Any) -> None:
        try:
            start.wait()
            for _ in range(40):
                with db.transaction() as conn:
                    tip(conn, src, dst, 1)
                    conn.execute("SELECT pg_sleep(0.001)")  # hold both locks a moment, as a request would
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=pair) for pair in ((a, b), (b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    with db.transaction() as conn:
        assert ledger.balance(conn, a.id) == ledger.balance(conn, b.id) == 1000
    assert_books_balance()


def test_transfer_many_matches_sequential_semantics(make_user: MakeUser) -> None:
    fans = [make_user(balance=b) for b in (25, 10, 0)]
    creator, other = make_user(role="creator"), make_user(role="creator")
    reqs = [
        ledger.TransferRequest(fans[0].id, creator.id, 10, "call", "call", "c1", "k1"),
        ledger.TransferRequest(fans[0].id, other.id, 10, "call", "call", "c2", "k2"),
        ledger.TransferRequest(fans[0].id, creator.id, 10, "call", "call", "c1", "k3"),  # 30 > 25: refused
        ledger.TransferRequest(
            fans[0].id, creator.id, 1, "call", "call", "c1", "k4"
        ),  # refused too (in order)
        ledger.TransferRequest(fans[1].id, creator.id, 10, "call", "call", "c3", "k5"),
        ledger.TransferRequest(
            fans[1].id, creator.id, 10, "call", "call", "c3", "k5"
        ),  # same key in the batch
        ledger.TransferRequest(fans[2].id, creator.id, 1, "call", "call", "c4", "k6"),
    ]
    with db.transaction() as conn:
        out = ledger.transfer_many(conn, reqs)
    assert [o.status for o in out] == [
        "ok",
        "ok",
        "insufficient",
        "insufficient",
        "ok",
        "duplicate",
        "insufficient",
    ]
    assert [o.transfer.from_balance for o in out if o.transfer] == [15, 5, 0]
    assert [o.transfer.to_balance for o in out if o.transfer] == [10, 10, 20]
    assert out[2].current_balance == 5 and out[6].current_balance == 0
    with db.transaction() as conn:
        again = ledger.transfer_many(conn, reqs[:2])
        assert [o.status for o in again] == ["duplicate", "duplicate"]
        assert ledger.balance(conn, creator.id) == 20
    assert_books_balance()


class _CountingConn:
    """Forwards to a connection and counts statements (to show a batch is a few round trips, not N)."""

    def __init__(self, conn: db.Conn) -> None:
        self.conn, self.statements = conn, 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self.statements += 1
        return self.conn.execute(*args, **kwargs)


def test_transfer_many_is_a_few_statements_for_thousands_of_transfers(
    make_user: MakeUser, set_env: Callable[[str, str], None]
) -> None:
    set_env("PLATFORM_FEE_PERCENT", "10")
    fans = [make_user(balance=100) for _ in range(20)]
    creators = [make_user(role="creator") for _ in range(5)]
    reqs = [
        ledger.TransferRequest(fans[i % 20].id, creators[i % 5].id, 1, "call", "call", f"c{i}", f"m{i}")
        for i in range(2000)
    ]
    with db.transaction() as conn:
        counting = _CountingConn(conn)
        out = ledger.transfer_many(counting, reqs)  # type: ignore[arg-type]
    assert counting.statements <= 4
    assert sum(o.status == "ok" for o in out) == 2000
    with db.transaction() as conn:
        assert ledger.balance(conn, ledger.PLATFORM_USER_ID) == 0  # 10% of 1 floors to 0
    assert_books_balance()


def test_a_single_transfer_is_the_batch_statement_with_the_same_answers(
    make_user: MakeUser, set_env: Callable[[str, str], None]
) -> None:
    set_env("PLATFORM_FEE_PERCENT", "20")
    fan, creator = make_user(balance=30), make_user(role="creator")
    with db.transaction() as conn:
        counting = _CountingConn(conn)
        moved = tip(counting, fan, creator, 10, key="one")  # type: ignore[arg-type]
        # ensure the platform row, lock the users, then the one transfer statement shared with transfer_many.
        assert counting.statements == 3
        assert moved is not None and (moved.from_balance, moved.to_balance, moved.platform_fee) == (20, 8, 2)
        assert tip(conn, fan, creator, 10, key="one") is None  # the same key-used rule as the batch
        [again] = ledger.transfer_many(
            conn, [ledger.TransferRequest(fan.id, creator.id, 10, "tip", "t", "t", "one")]
        )
        assert again.status == "duplicate"
        with pytest.raises(PaymentRequired) as short:
            tip(conn, fan, creator, 21)
        assert short.value.extra == {"current_balance": 20, "required_amount": 21}
    assert_books_balance()


def test_debt_repayment_references_the_transfer_that_paid_it(make_user: MakeUser) -> None:
    fans, creators = [make_user(balance=50) for _ in range(2)], [make_user(role="creator") for _ in range(2)]
    with db.transaction() as conn:
        for creator in creators:
            ledger.debit(
                conn,
                user_id=creator.id,
                amount=15,
                kind="adjustment",
                reference_type="t",
                reference_id=f"d{creator.id}",
                idempotency_key=f"d{creator.id}",
                allow_debt=True,
            )
        single = tip(conn, fans[0], creators[0], 20)
        batch = ledger.transfer_many(
            conn,
            [
                ledger.TransferRequest(fans[1].id, creators[1].id, 10, "call", "call", "c", f"m{i}")
                for i in range(2)
            ],
        )
        repaid = {
            r["user_id"]: r["reference_id"]
            for r in conn.execute(
                "SELECT user_id, reference_id FROM token_debts WHERE type = 'debt_repayment'"
            ).fetchall()
        }
    assert single is not None and batch[1].transfer is not None
    assert repaid == {creators[0].id: str(single.id), creators[1].id: str(batch[1].transfer.id)}
    assert_books_balance()


def test_raw_sql_cannot_make_a_balance_negative(make_user: MakeUser) -> None:
    fan = make_user(balance=5)
    with (
        psycopg.connect(db.get_settings().database_url) as conn,
        pytest.raises(psycopg.errors.CheckViolation),
    ):
        conn.execute("UPDATE users SET token_balance = token_balance - 6 WHERE id = %s", (fan.id,))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE token_transactions SET amount = amount + 1",
        "DELETE FROM token_transactions",
        "TRUNCATE token_transactions CASCADE",
        "UPDATE token_debts SET amount = 1",
        "DELETE FROM token_debts",
    ],
)
def test_raw_sql_cannot_change_or_delete_ledger_rows(make_user: MakeUser, statement: str) -> None:
    fan = make_user(balance=5)
    with db.transaction() as conn:
        ledger.debit(
            conn,
            user_id=fan.id,
            amount=9,
            kind="adjustment",
            reference_type="t",
            reference_id="d",
            idempotency_key="d",
            allow_debt=True,
        )
    with (
        psycopg.connect(db.get_settings().database_url) as conn,
        pytest.raises(psycopg.errors.RestrictViolation),
    ):
        conn.execute(statement)
    with psycopg.connect(db.get_settings().database_url) as conn:
        assert conn.execute("SELECT count(*) FROM token_transactions").fetchone() == (2,)


def test_reconcile_reports_drift_and_alerts(make_user: MakeUser, caplog: pytest.LogCaptureFixture) -> None:
    fan = make_user(balance=10)
    assert_books_balance()
    with db.transaction() as conn:  # a balance change that skipped the ledger
        conn.execute("UPDATE users SET token_balance = token_balance + 5 WHERE id = %s", (fan.id,))
    with caplog.at_level("WARNING", logger="digis.alert"):
        report = books()
    assert report.balance_drift == [ledger.Drift(fan.id, 15, 10)]
    assert report.conservation_drift == 5 and not report.ok
    assert any("ledger drift" in r.getMessage() for r in caplog.records)


# make_user is reused across examples on purpose: each example truncates the tables first.
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(1, 40)), min_size=1, max_size=25))
def test_transfer_many_equals_a_simple_model(make_user: MakeUser, moves: list[tuple[int, int, int]]) -> None:
    from tests.conftest import _truncate_all

    _truncate_all()
    people = [make_user(role="creator", balance=b) for b in (30, 20, 0)]
    model = {0: 30, 1: 20, 2: 0}
    spent: dict[int, int] = {0: 0, 1: 0, 2: 0}
    stopped: set[int] = set()
    reqs, expected = [], []
    for n, (src, dst, amount) in enumerate(moves):
        if src == dst:
            continue
        reqs.append(ledger.TransferRequest(people[src].id, people[dst].id, amount, "call", "t", "x", f"k{n}"))
        # The batch rule: taken in order against the starting balance; after one refusal, the payer's rest too.
        fits = src not in stopped and spent[src] + amount <= [30, 20, 0][src]
        if fits:
            spent[src] += amount
            model[src] -= amount
            model[dst] += amount
        else:
            stopped.add(src)
        expected.append("ok" if fits else "insufficient")
    with db.transaction() as conn:
        out = ledger.transfer_many(conn, reqs)
        assert [o.status for o in out] == expected
        assert [ledger.balance(conn, p.id) for p in people] == [model[0], model[1], model[2]]
    assert_books_balance()
