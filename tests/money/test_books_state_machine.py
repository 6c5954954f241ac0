"""A hypothesis state machine over purchases, tips, call minutes, refunds, disputes, redeliveries and failures.

After every step: each balance and debt equals its ledger sum, balance_after chains, nothing is negative, tokens
are conserved, purchase lots stay within balances, and every user's balance and debt equal what the plain-Python
model of the rules (tests/money/model.py) says, provenance and clawbacks from creators included.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from lib import db, ledger, stripe_webhooks
from lib.errors import PaymentRequired
from lib.payments import settlement
from tests.conftest import _truncate_all
from tests.money.conftest import charge_refunded, dispute, intent_succeeded
from tests.money.model import PLATFORM, Model, Payment

PACKS = [(50, 500), (200, 1900), (433, 3900)]


class Boom(Exception):
    """A failure injected after an event's effects were written, before the commit."""


class Books(RuleBasedStateMachine):
    """Random money traffic against the real database and handlers."""

    fee_percent = 0
    payments = Bundle("payments")
    pending = Bundle("pending")

    def __init__(self) -> None:
        super().__init__()
        _truncate_all()
        self.users = [uuid.uuid4() for _ in range(4)]  # 0, 1: fans; 2, 3: creators
        with db.transaction() as conn:
            for n, uid in enumerate(self.users):
                conn.execute(
                    "INSERT INTO users (id, username, is_creator) VALUES (%s, %s, %s)",
                    (uid, f"u{n}_{uid.hex[:8]}", n >= 2),
                )
        self.model = Model(self.fee_percent)

    # --- helpers ----------------------------------------------------------------------------------------

    def uid(self, n: int) -> uuid.UUID:
        return ledger.PLATFORM_USER_ID if n == PLATFORM else self.users[n]

    def deliver(self, payload: bytes, *, fail: bool = False) -> None:
        event = json.loads(payload)
        try:
            with db.transaction() as conn:
                stripe_webhooks.handle_event(conn, event)
                if fail:
                    raise Boom
        except Boom:
            pass

    def pay(self, pi: str) -> Payment:
        return self.model.payments[pi]

    # --- rules ------------------------------------------------------------------------------------------

    @rule(target=payments, user=st.integers(0, 3), pack=st.sampled_from(PACKS), twice=st.booleans())
    def purchase(self, user: int, pack: tuple[int, int], twice: bool) -> str:
        return self.buy(user, pack, twice)

    def buy(self, user: int, pack: tuple[int, int], twice: bool = False) -> str:
        """A succeeded purchase through the real webhook (and the model)."""
        pi = f"pi_{uuid.uuid4().hex[:20]}"
        self.model.payments[pi] = Payment(pi, user, *pack, succeeded=True)
        payload = intent_succeeded(pi, self.users[user], *pack)
        self.deliver(payload)
        if twice:
            self.deliver(payload)  # the same event id again
        self.model.sync(pi)
        return pi

    @rule(target=pending, user=st.integers(0, 1), pack=st.sampled_from(PACKS))
    def start_purchase(self, user: int, pack: tuple[int, int]) -> str:
        pi = f"pi_{uuid.uuid4().hex[:20]}"
        self.model.payments[pi] = Payment(pi, user, *pack)
        return pi

    @rule(target=payments, pi=consumes(pending))
    def late_success(self, pi: str) -> str:
        p = self.pay(pi)
        p.succeeded = True
        self.deliver(intent_succeeded(pi, self.users[p.user], p.tokens, p.amount))
        self.model.sync(pi)
        return pi

    @rule(pi=st.one_of(payments, pending), share=st.integers(1, 100))
    def refund(self, pi: str, share: int) -> None:
        p = self.pay(pi)
        cents = p.amount * share // 100 or 1
        p.refunded = max(p.refunded, cents)
        self.deliver(charge_refunded(pi, cents, p.amount))
        self.model.sync(pi)

    @rule(pi=payments, share=st.integers(1, 100))
    def open_dispute(self, pi: str, share: int) -> None:
        p = self.pay(pi)
        dp = f"dp_{len(p.disputes)}_{pi[3:11]}"
        cents = p.amount * share // 100 or 1
        p.disputes[dp] = (cents, False, "needs_response")
        self.deliver(dispute("created", dp, pi, cents))
        self.model.sync(pi)

    @rule(pi=payments, won=st.booleans())
    def close_dispute(self, pi: str, won: bool) -> None:
        p = self.pay(pi)
        open_ones = [d for d, (_, closed, _) in p.disputes.items() if not closed]
        if not open_ones:
            return
        cents = p.disputes[open_ones[0]][0]
        status = "won" if won else "lost"
        p.disputes[open_ones[0]] = (cents, True, status)
        self.deliver(dispute("closed", open_ones[0], pi, cents, status=status))
        self.model.sync(pi)

    @rule(pi=payments)
    def redeliver_under_a_new_event_id(self, pi: str) -> None:
        p = self.pay(pi)
        self.deliver(intent_succeeded(pi, self.users[p.user], p.tokens, p.amount))

    @rule(pi=payments, share=st.integers(1, 100))
    def failed_delivery_changes_nothing(self, pi: str, share: int) -> None:
        p = self.pay(pi)
        self.deliver(charge_refunded(pi, max(p.refunded, p.amount * share // 100 or 1), p.amount), fail=True)

    @rule(src=st.integers(0, 3), dst=st.integers(2, 3), amount=st.integers(1, 300))
    def tip(self, src: int, dst: int, amount: int) -> None:
        if src == dst:
            return
        try:
            with db.transaction() as conn:
                ledger.transfer(
                    conn,
                    from_user=self.users[src],
                    to_user=self.users[dst],
                    amount=amount,
                    kind="tip",
                    reference_type="test",
                    reference_id="sm",
                    idempotency_key=uuid.uuid4().hex,
                )
            ok = True
        except PaymentRequired:
            ok = False
        assert ok == self.model.transfer(src, dst, amount)

    @rule(src=st.integers(0, 1), dst=st.integers(2, 3), rate=st.integers(1, 60), minutes=st.integers(1, 5))
    def call_minutes(self, src: int, dst: int, rate: int, minutes: int) -> None:
        """A billing sweep's batch: the payer's minutes in order until one does not fit."""
        call = uuid.uuid4().hex[:8]
        requests = [
            ledger.TransferRequest(
                self.users[src], self.users[dst], rate, "call", "call", call, f"call:{call}:minute:{n}"
            )
            for n in range(1, minutes + 1)
        ]
        with db.transaction() as conn:
            outcomes = ledger.transfer_many(conn, requests)
        expected: list[str] = []
        for _ in requests:
            ok = bool(not expected or expected[-1] == "ok") and self.model.transfer(src, dst, rate)
            expected.append("ok" if ok else "insufficient")
        assert [o.status for o in outcomes] == expected

    @rule(user=st.integers(0, 3), amount=st.integers(1, 200))
    def admin_adjustment(self, user: int, amount: int) -> None:
        """A debit that is no transfer: the buyer's lots shrink, no creator is recorded."""
        try:
            with db.transaction() as conn:
                ledger.debit(
                    conn,
                    user_id=self.users[user],
                    amount=amount,
                    kind="adjustment",
                    reference_type="test",
                    reference_id="sm",
                    idempotency_key=uuid.uuid4().hex,
                )
            ok = True
        except PaymentRequired:
            ok = False
        assert ok == (self.model.bal[user] >= amount)
        if ok:
            self.model.debit(user, amount, allow_debt=False)

    # --- invariants -------------------------------------------------------------------------------------

    @invariant()
    def books_balance(self) -> None:
        with db.transaction() as conn:
            report = ledger.reconcile(conn)
            rows = {
                r["id"]: (int(r["token_balance"]), int(r["token_debt"]))
                for r in conn.execute("SELECT id, token_balance, token_debt FROM users")
            }
            lots = {
                r["stripe_payment_intent_id"]: int(r["remaining"])
                for r in conn.execute(
                    """SELECT p.stripe_payment_intent_id, l.remaining
                       FROM purchase_lots l JOIN payments p ON p.id = l.payment_id"""
                )
            }
        assert report.ok, report
        for n in [*range(len(self.users)), PLATFORM]:
            want = (self.model.bal[n], self.model.debt[n])
            assert rows.get(self.uid(n), (0, 0)) == want, (n, rows.get(self.uid(n)), want)
        assert all(b >= 0 and d >= 0 for b, d in rows.values())
        assert {pi: lot.remaining for pi, lot in self.model.lots.items() if lot.remaining} == {
            pi: n for pi, n in lots.items() if n
        }

    @invariant()
    def payments_row_matches_the_model(self) -> None:
        with db.transaction() as conn:
            applied = {
                r["stripe_payment_intent_id"]: int(r["tokens_applied"])
                for r in conn.execute("SELECT stripe_payment_intent_id, tokens_applied FROM payments")
            }
        for pi, p in self.model.payments.items():
            assert applied.get(pi, 0) == p.target(), (pi, p)


def _run(machine: type[Books]) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=12,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_books_balance_under_random_money_traffic(clean: None) -> None:
    _run(Books)


class BooksWithAFee(Books):
    """The same traffic with a 15 percent platform fee (fees are taken back from the platform account)."""

    fee_percent = 15


def test_books_balance_with_a_platform_fee(clean: None, set_env: Callable[[str, str], None]) -> None:
    set_env("PLATFORM_FEE_PERCENT", "15")
    _run(BooksWithAFee)


def test_the_model_agrees_with_the_documented_refund_rounding() -> None:
    p = Payment("pi", 0, 433, 3900, succeeded=True, refunded=1000)
    assert p.target() == 433 - settlement.tokens_for_cents(433, 3900, 1000) == 321
