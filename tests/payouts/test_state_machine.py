"""The money state machine extended with the reserve window and payouts (Stripe Connect stand-in, real webhooks).

Adds to tests/money's Books: time passing (earnings age out of the reserve window), payout requests (accepted or
refused by the rules; transfers that Stripe makes or refuses), payout.paid, payout.failed and transfer reversals.
After every step, besides the Books invariants (conservation, reconcile with its payouts and lots checks, every
balance and debt equal to the model's): every creator's held, available, pending and paid tokens equal the
model's, every payout's status and returned tokens too, and no payout has more than one Stripe transfer.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule, run_state_machine_as_test

from lib import db, payouts, stripe_webhooks, users
from lib.errors import BadRequest
from localdev.stripe_connect_standin import ConnectStandin
from tests.money.test_books_state_machine import Books

CREATORS = (2, 3)
MINIMUM = 20


class Payouts(Books):
    """Books plus earnings, time and payouts."""

    connect: ConnectStandin  # set by the test before the run

    def __init__(self) -> None:
        super().__init__()
        self.accounts: dict[int, str] = {}
        for n in CREATORS:
            with db.transaction() as conn:
                user = users.get(conn, self.users[n])
                assert user is not None
                request = payouts.OnboardingRequest.model_validate(
                    {"returnUrl": "http://localhost:5173/done", "refreshUrl": "http://localhost:5173/again"}
                )
                account = payouts.start_onboarding(conn, user, request).accountId
            snapshot = self.connect.enable_account(account)
            self.stripe_event("account.updated", snapshot, account=account)
            self.accounts[n] = account
        self.payout_ids: list[str] = []
        self.sent: set[str] = set()

    # --- helpers ----------------------------------------------------------------------------------------

    def stripe_event(self, type: str, obj: dict[str, Any], *, account: str | None = None) -> None:
        """A Stripe event through the real dispatch (the webhook's signature check is covered elsewhere)."""
        event: dict[str, Any] = {"id": f"evt_{uuid.uuid4().hex}", "type": type, "data": {"object": obj}}
        if account:
            event["account"] = account
        with db.transaction() as conn:
            stripe_webhooks.handle_event(conn, json.loads(json.dumps(event)))

    def in_transit(self, n: int) -> list[str]:
        return [
            p
            for p in self.payout_ids
            if self.model.payouts[p].creator == n and self.model.payouts[p].status == "in_transit"
        ]

    # --- rules ------------------------------------------------------------------------------------------

    @initialize(target=Books.payments)
    def first_fan_buys(self) -> str:
        """Both fans start with a pack, so creators earn from the first steps on."""
        return self.buy(0, (200, 1900))

    @initialize(target=Books.payments)
    def second_fan_buys(self) -> str:
        return self.buy(1, (433, 3900))

    @rule(src=st.integers(0, 1), dst=st.sampled_from(CREATORS), amount=st.integers(1, 120))
    def fan_spends_on_a_creator(self, src: int, dst: int, amount: int) -> None:
        """Tips and calls, sized to what fans usually have (the Books tip rule covers the rest)."""
        self.tip(src, dst, amount)

    @rule(days=st.sampled_from([1, 4, 8]))
    def time_passes(self, days: int) -> None:
        """Everything recorded so far gets `days` older (the ledger stamps rows with the database's clock)."""
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            shift = {"d": days * 86400}
            conn.execute(
                "UPDATE token_transactions SET created_at = created_at - make_interval(secs => %(d)s)", shift
            )
            conn.execute(
                "UPDATE earning_sources SET created_at = created_at - make_interval(secs => %(d)s)", shift
            )
            conn.execute(
                "UPDATE payment_clawbacks SET earned_at = earned_at - make_interval(secs => %(d)s) "
                "WHERE earned_at IS NOT NULL",
                shift,
            )
        self.model.now += days

    @rule(
        n=st.sampled_from(CREATORS),
        tokens=st.one_of(st.none(), st.integers(1, 2 * MINIMUM), st.integers(1, 400)),
        refuse=st.booleans(),
    )
    def request_payout(self, n: int, tokens: int | None, refuse: bool) -> None:
        _, available, _, _ = self.model.earnings(n)
        wanted = available if tokens is None else tokens
        expect = (
            "BELOW_MINIMUM"
            if wanted < MINIMUM
            else "INSUFFICIENT_AVAILABLE_TOKENS"
            if wanted > available
            else "ok"
        )
        saved = self.connect.platform_balance
        if refuse:
            self.connect.platform_balance = (
                0  # Stripe refuses the transfer: the payout fails, tokens come back
            )
        try:
            with db.transaction() as conn:
                user = users.get(conn, self.users[n])
                assert user is not None
                result = payouts.request_payout(conn, user, payouts.PayoutRequest(tokens=tokens))
            got = "ok"
        except BadRequest as exc:
            got = str(exc.code)
        finally:
            self.connect.platform_balance = saved
        assert got == expect, (got, expect, available, wanted)
        if got != "ok":
            return
        payout_id = str(result.payout.id)
        self.payout_ids.append(payout_id)
        self.model.pay_out(payout_id, n, wanted)
        if refuse:
            self.model.return_payout(payout_id, "failed")
        else:
            self.model.payouts[payout_id].status = "in_transit"
            self.sent.add(payout_id)

    @rule(n=st.sampled_from(CREATORS), refuse=st.booleans())
    def a_week_later_the_creator_cashes_out(self, n: int, refuse: bool) -> None:
        """The common path, made likely: time passes the reserve window, then everything available is paid out."""
        self.time_passes(8)
        self.request_payout(n, None, refuse)

    @precondition(lambda self: any(self.in_transit(n) for n in CREATORS))
    @rule(n=st.sampled_from(CREATORS), failed=st.booleans())
    def bank_payout(self, n: int, failed: bool) -> None:
        """Stripe pays the connected balance out (payout.paid) or the bank refuses it (payout.failed)."""
        if not self.in_transit(n) or self.connect.balance_of(self.accounts[n]) <= 0:
            return
        payout = self.connect.pay_out(self.accounts[n], status="failed" if failed else "paid")
        self.stripe_event(f"payout.{payout['status']}", payout, account=self.accounts[n])
        for p in self.in_transit(n):
            if failed:
                self.model.return_payout(p, "failed")
            else:
                self.model.payouts[p].status = "paid"

    @precondition(lambda self: any(self.in_transit(n) for n in CREATORS))
    @rule(data=st.data())
    def transfer_reversed(self, data: st.DataObject) -> None:
        """The platform pulls one transfer back from the connected account (Stripe sends transfer.reversed)."""
        candidates = [p for n in CREATORS for p in self.in_transit(n)]
        payout_id = data.draw(st.sampled_from(candidates))
        with db.transaction() as conn:
            row = conn.execute(
                "SELECT stripe_transfer_id FROM payouts WHERE id = %s", (payout_id,)
            ).fetchone()
        assert row is not None and row["stripe_transfer_id"]
        with self.connect.lock:
            self.connect.create_reversal({}, row["stripe_transfer_id"])
            transfer = json.loads(json.dumps(self.connect.transfers[row["stripe_transfer_id"]]))
        self.stripe_event("transfer.reversed", transfer)
        self.model.return_payout(payout_id, "reversed")

    # --- invariants -------------------------------------------------------------------------------------

    @invariant()
    def earnings_match_the_model(self) -> None:
        now = datetime.now(UTC)
        with db.transaction() as conn:
            for n in CREATORS:
                mine = payouts.earnings_of(conn, self.users[n], now)
                assert (mine.held, mine.available, mine.pending, mine.paid) == self.model.earnings(n), n
                assert mine.held + mine.available <= mine.balance

    @invariant()
    def payouts_match_the_model_and_each_was_sent_at_most_once(self) -> None:
        with db.transaction() as conn:
            rows = {
                str(r["id"]): (r["status"], int(r["tokens_returned"]))
                for r in conn.execute("SELECT id, status, tokens_returned FROM payouts")
            }
        assert rows == {p: (m.status, m.returned) for p, m in self.model.payouts.items()}
        mine = set(self.accounts.values())  # the stand-in outlives one example: only this example's accounts
        with self.connect.lock:
            sent = [
                t["metadata"].get("payout_id")
                for t in self.connect.transfers.values()
                if t["destination"] in mine
            ]
        assert sorted(sent) == sorted(self.sent)  # one transfer per payout Stripe accepted, never two


def _run(machine: type[Payouts], connect: ConnectStandin) -> None:
    machine.connect = connect
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=10,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


@pytest.fixture
def small_minimum(set_env: Callable[[str, str], None]) -> None:
    set_env("PAYOUT_MINIMUM_TOKENS", str(MINIMUM))


def test_books_and_earnings_hold_through_payouts(
    clean: None, small_minimum: None, connect: ConnectStandin
) -> None:
    _run(Payouts, connect)


class PayoutsWithAFee(Payouts):
    """The same with a 15 percent platform fee."""

    fee_percent = 15


def test_books_and_earnings_hold_through_payouts_with_a_platform_fee(
    clean: None, small_minimum: None, connect: ConnectStandin, set_env: Callable[[str, str], None]
) -> None:
    set_env("PLATFORM_FEE_PERCENT", "15")
    _run(PayoutsWithAFee, connect)
