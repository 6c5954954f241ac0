"""A hypothesis state machine over purchases, tips, refunds, disputes, redeliveries and failures.

After every step: each balance and debt equals its ledger sum, balance_after chains, nothing is negative, tokens
are conserved, and every user's balance and debt equal what a plain-Python model of the rules says.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

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

from lib import db, ledger
from lib.errors import PaymentRequired
from lib.payments import purchases, webhooks
from tests.conftest import _truncate_all
from tests.money.conftest import charge_refunded, dispute, intent_succeeded

PACKS = [(50, 500), (200, 1900), (433, 3900)]


class Boom(Exception):
    """A failure injected after an event's effects were written, before the commit."""


@dataclass
class Payment:
    """The model of one PaymentIntent."""

    pi: str
    user: int
    tokens: int
    amount: int
    succeeded: bool = False
    refunded: int = 0
    disputes: dict[str, tuple[int, bool, str]] = field(default_factory=dict)  # id -> (cents, closed, status)

    def target(self) -> int:
        """Tokens this payment should give now (the documented rules, written independently)."""
        if not self.succeeded:
            return 0

        def back(cents: int) -> int:
            if cents <= 0:
                return 0
            return (
                self.tokens
                if cents >= self.amount
                else min(self.tokens, -(-self.tokens * cents // self.amount))
            )

        held = back(self.refunded) + sum(
            back(c)
            for c, closed, status in self.disputes.values()
            if not (closed and status in ("won", "warning_closed"))
        )
        return max(0, self.tokens - held)


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
        self.model: dict[str, Payment] = {}
        self.moved = [0, 0, 0, 0]  # tokens received minus tokens sent, per user
        self.platform = 0

    # --- the model --------------------------------------------------------------------------------------

    def net(self, n: int) -> int:
        return sum(p.target() for p in self.model.values() if p.user == n) + self.moved[n]

    def deliver(self, payload: bytes, *, fail: bool = False) -> None:
        event = json.loads(payload)
        try:
            with db.transaction() as conn:
                webhooks.handle_event(conn, event)
                if fail:
                    raise Boom
        except Boom:
            pass

    # --- rules ------------------------------------------------------------------------------------------

    @rule(target=payments, user=st.integers(0, 3), pack=st.sampled_from(PACKS), twice=st.booleans())
    def purchase(self, user: int, pack: tuple[int, int], twice: bool) -> str:
        pi = f"pi_{uuid.uuid4().hex[:20]}"
        self.model[pi] = Payment(pi, user, *pack, succeeded=True)
        payload = intent_succeeded(pi, self.users[user], *pack)
        self.deliver(payload)
        if twice:
            self.deliver(payload)  # the same event id again
        return pi

    @rule(target=pending, user=st.integers(0, 1), pack=st.sampled_from(PACKS))
    def start_purchase(self, user: int, pack: tuple[int, int]) -> str:
        pi = f"pi_{uuid.uuid4().hex[:20]}"
        self.model[pi] = Payment(pi, user, *pack)
        return pi

    @rule(target=payments, pi=consumes(pending))
    def late_success(self, pi: str) -> str:
        p = self.model[pi]
        p.succeeded = True
        self.deliver(intent_succeeded(pi, self.users[p.user], p.tokens, p.amount))
        return pi

    @rule(pi=st.one_of(payments, pending), share=st.integers(1, 100))
    def refund(self, pi: str, share: int) -> None:
        p = self.model[pi]
        cents = p.amount * share // 100 or 1
        p.refunded = max(p.refunded, cents)
        self.deliver(charge_refunded(pi, cents, p.amount))

    @rule(pi=payments, share=st.integers(1, 100))
    def open_dispute(self, pi: str, share: int) -> None:
        p = self.model[pi]
        dp = f"dp_{len(p.disputes)}_{pi[3:11]}"
        cents = p.amount * share // 100 or 1
        p.disputes[dp] = (cents, False, "needs_response")
        self.deliver(dispute("created", dp, pi, cents))

    @rule(pi=payments, won=st.booleans())
    def close_dispute(self, pi: str, won: bool) -> None:
        p = self.model[pi]
        open_ones = [d for d, (_, closed, _) in p.disputes.items() if not closed]
        if not open_ones:
            return
        cents = p.disputes[open_ones[0]][0]
        status = "won" if won else "lost"
        p.disputes[open_ones[0]] = (cents, True, status)
        self.deliver(dispute("closed", open_ones[0], pi, cents, status=status))

    @rule(pi=payments)
    def redeliver_under_a_new_event_id(self, pi: str) -> None:
        p = self.model[pi]
        self.deliver(intent_succeeded(pi, self.users[p.user], p.tokens, p.amount))

    @rule(pi=payments, share=st.integers(1, 100))
    def failed_delivery_changes_nothing(self, pi: str, share: int) -> None:
        p = self.model[pi]
        self.deliver(charge_refunded(pi, max(p.refunded, p.amount * share // 100 or 1), p.amount), fail=True)

    @rule(src=st.integers(0, 3), dst=st.integers(2, 3), amount=st.integers(1, 300))
    def tip(self, src: int, dst: int, amount: int) -> None:
        if src == dst:
            return
        cut, fee = ledger.split_fee(amount)
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
        assert ok == (max(self.net(src), 0) >= amount)
        if ok:
            self.moved[src] -= amount
            self.moved[dst] += cut
            self.platform += fee

    # --- invariants -------------------------------------------------------------------------------------

    @invariant()
    def books_balance(self) -> None:
        with db.transaction() as conn:
            report = ledger.reconcile(conn)
            rows = {
                r["id"]: (int(r["token_balance"]), int(r["token_debt"]))
                for r in conn.execute("SELECT id, token_balance, token_debt FROM users")
            }
        assert report.ok, report
        for n, uid in enumerate(self.users):
            net = self.net(n)
            assert rows[uid] == (max(net, 0), max(-net, 0)), (n, rows[uid], net)
        assert rows.get(ledger.PLATFORM_USER_ID, (0, 0)) == (self.platform, 0)
        assert all(b >= 0 and d >= 0 for b, d in rows.values())

    @invariant()
    def payments_row_matches_the_model(self) -> None:
        with db.transaction() as conn:
            applied = {
                r["stripe_payment_intent_id"]: int(r["tokens_applied"])
                for r in conn.execute("SELECT stripe_payment_intent_id, tokens_applied FROM payments")
            }
        for pi, p in self.model.items():
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


def test_books_balance_with_a_platform_fee(clean: None, set_env: Callable[[str, str], None]) -> None:
    set_env("PLATFORM_FEE_PERCENT", "15")
    _run(Books)


def test_the_model_agrees_with_the_documented_refund_rounding() -> None:
    p = Payment("pi", 0, 433, 3900, succeeded=True, refunded=1000)
    assert p.target() == 433 - purchases.tokens_for_cents(433, 3900, 1000) == 321
