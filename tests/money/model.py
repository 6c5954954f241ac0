"""A plain-Python model of the money rules, written from their documentation, for the hypothesis state machines.

Ledger (lib/ledger): credits repay debt first; a debit with debt allowed takes the balance, the rest is debt; every
non-transfer debit shrinks purchase lots (oldest first) to the balance. Transfers: fee = floor(amount * pct / 100),
the payer's purchase lots pay oldest first and each (transfer, lot) is a provenance source.
Payments (lib/payments/clawbacks): taking back n tokens of purchase X takes X's unspent lot, then X's sources newest
first (the fee part cumulative-floored per transfer, from the platform), then the buyer's balance/debt; giving
back undoes the takes latest first, the rest is a fresh credit that goes into X's lot.
Earnings (lib/payouts/earnings): held = earned (net of takes) inside the window, capped by the balance; available =
earned before the window net of takes, less payouts not returned, capped by balance - held.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

PLATFORM = -1  # the platform account's index in the model


@dataclass
class Payment:
    """One PaymentIntent."""

    pi: str
    user: int
    tokens: int
    amount: int
    succeeded: bool = False
    refunded: int = 0
    disputes: dict[str, tuple[int, bool, str]] = field(default_factory=dict)  # id -> (cents, closed, status)

    def target(self) -> int:
        """Tokens this payment should give now."""
        if not self.succeeded:
            return 0

        def back(cents: int) -> int:
            if cents <= 0:
                return 0
            if cents >= self.amount:
                return self.tokens
            return min(self.tokens, -(-self.tokens * cents // self.amount))

        held = back(self.refunded) + sum(
            back(c)
            for c, closed, status in self.disputes.values()
            if not (closed and status in ("won", "warning_closed"))
        )
        return max(0, self.tokens - held)


@dataclass
class Lot:
    user: int
    remaining: int
    order: int


@dataclass
class Source:
    seq: int
    entry: int
    pi: str
    payee: int
    tokens: int
    gross: int
    fee: int
    at: float


@dataclass
class Take:
    seq: int
    pi: str
    party: str  # fan | earning
    user: int
    entry: int | None
    at: float | None
    tokens: int
    cut: int
    fee: int


@dataclass
class Payout:
    creator: int
    tokens: int
    returned: int = 0
    status: str = "pending"


class Model:
    """Users are small ints (PLATFORM for the platform account); time is in days."""

    def __init__(self, fee_percent: int = 0, reserve_days: int = 7) -> None:
        self.fee = Fraction(fee_percent, 100)
        self.reserve_days = reserve_days
        self.bal: dict[int, int] = defaultdict(int)
        self.debt: dict[int, int] = defaultdict(int)
        self.payments: dict[str, Payment] = {}
        self.applied: dict[str, int] = defaultdict(int)
        self.lots: dict[str, Lot] = {}
        self.sources: list[Source] = []
        self.takes: list[Take] = []
        self.earned: list[tuple[int, int, float]] = []  # (creator, cut, day)
        self.payouts: dict[str, Payout] = {}
        self.now = 0.0
        self._seq = 0

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    # --- ledger -------------------------------------------------------------------------------------------

    def credit(self, u: int, n: int) -> int:
        """Add n; debt first. Returns the balance change."""
        self.bal[u] += n
        repay = min(self.bal[u], self.debt[u])
        self.bal[u] -= repay
        self.debt[u] -= repay
        return n - repay

    def debit(self, u: int, n: int, *, allow_debt: bool) -> None:
        take = min(self.bal[u], n)
        assert allow_debt or take == n
        self.bal[u] -= take
        self.debt[u] += n - take
        if take:
            self.clamp(u)

    def clamp(self, u: int) -> None:
        mine = sorted(
            (lot for lot in self.lots.values() if lot.user == u and lot.remaining), key=lambda x: x.order
        )
        excess = sum(lot.remaining for lot in mine) - self.bal[u]
        for lot in mine:
            if excess <= 0:
                break
            cut = min(lot.remaining, excess)
            lot.remaining -= cut
            excess -= cut

    def transfer(self, src: int, dst: int, amount: int) -> bool:
        """False (and nothing happens) when the payer is short."""
        if self.bal[src] < amount:
            return False
        fee = int(amount * self.fee)  # floor
        cut = amount - fee
        entry = self._next()
        self.bal[src] -= amount
        need = amount
        for lot in sorted(
            (x for x in self.lots.values() if x.user == src and x.remaining), key=lambda x: x.order
        ):
            if need == 0:
                break
            used = min(need, lot.remaining)
            lot.remaining -= used
            need -= used
            pi = next(p for p, x in self.lots.items() if x is lot)
            self.sources.append(Source(self._next(), entry, pi, dst, used, amount, fee, self.now))
        if cut:
            self.credit(dst, cut)
            self.earned.append((dst, cut, self.now))
        self.bal[PLATFORM] += fee
        return True

    # --- payments -----------------------------------------------------------------------------------------

    def sync(self, pi: str) -> None:
        p = self.payments[pi]
        delta = p.target() - self.applied[pi]
        if delta > 0:
            self._give_back(p, delta)
        elif delta < 0:
            self._take_back(p, -delta)
        self.applied[pi] = p.target()

    def _clawed(self, entry: int, pi: str | None = None) -> int:
        return sum(t.tokens for t in self.takes if t.entry == entry and (pi is None or t.pi == pi))

    def _take_back(self, p: Payment, n: int) -> None:
        lot = self.lots.get(p.pi)
        unspent = min(n, lot.remaining if lot else 0)
        rest = n - unspent
        pieces: list[tuple[Source, int, int, int]] = []
        for s in sorted((s for s in self.sources if s.pi == p.pi), key=lambda s: -s.seq):
            open_ = s.tokens - self._clawed(s.entry, p.pi)
            if open_ <= 0:
                continue
            if rest == 0:
                break
            r = min(rest, open_)
            before = self._clawed(s.entry)
            fee = (before + r) * s.fee // s.gross - before * s.fee // s.gross
            pieces.append((s, r, r - fee, fee))
            rest -= r
        if unspent:
            assert lot is not None
            lot.remaining -= unspent
        if unspent + rest:
            self.debit(p.user, unspent + rest, allow_debt=True)
        per: dict[int, int] = defaultdict(int)
        for s, _, cut, _ in pieces:
            per[s.payee] += cut
        for u, amount in per.items():
            if amount:
                self.debit(u, amount, allow_debt=True)
        fees = sum(f for *_, f in pieces)
        if fees:
            self.debit(PLATFORM, fees, allow_debt=True)
        if unspent + rest:
            self.takes.append(
                Take(self._next(), p.pi, "fan", p.user, None, None, unspent + rest, unspent + rest, 0)
            )
        for s, r, cut, fee in pieces:
            self.takes.append(Take(self._next(), p.pi, "earning", s.payee, s.entry, s.at, r, cut, fee))

    def _give_back(self, p: Payment, n: int) -> None:
        groups: dict[tuple[str, int, int | None], list[Take]] = defaultdict(list)
        for t in self.takes:
            if t.pi == p.pi:
                groups[(t.party, t.user, t.entry)].append(t)
        outstanding = sorted(
            (
                (key, sum(t.tokens for t in ts), max(t.seq for t in ts), ts[0].at)
                for key, ts in groups.items()
            ),
            key=lambda g: -g[2],
        )
        rest, to_fan = n, 0
        pieces: list[tuple[int, int, float | None, int, int, int]] = []
        for (party, user, entry), net, _, at in outstanding:
            if net <= 0:
                continue
            if rest == 0:
                break
            r = min(rest, net)
            rest -= r
            if party == "fan":
                to_fan += r
                continue
            assert entry is not None
            src = next(s for s in self.sources if s.pi == p.pi and s.entry == entry)
            before = self._clawed(entry)
            fee = before * src.fee // src.gross - (before - r) * src.fee // src.gross
            pieces.append((user, entry, at, r, r - fee, fee))
        credited = to_fan + rest
        if credited:
            change = self.credit(p.user, credited)
            if change > 0:
                if p.pi not in self.lots:
                    self.lots[p.pi] = Lot(p.user, 0, self._next())
                self.lots[p.pi].remaining += change
        per: dict[int, int] = defaultdict(int)
        for user, _, _, _, cut, _ in pieces:
            per[user] += cut
        for u, amount in per.items():
            if amount:
                self.credit(u, amount)
        fees = sum(piece[5] for piece in pieces)
        if fees:
            self.credit(PLATFORM, fees)
        if to_fan:
            self.takes.append(Take(self._next(), p.pi, "fan", p.user, None, None, -to_fan, -to_fan, 0))
        for user, entry, at, r, cut, fee in pieces:
            self.takes.append(Take(self._next(), p.pi, "earning", user, entry, at, -r, -cut, -fee))

    # --- earnings and payouts -----------------------------------------------------------------------------

    def earnings(self, u: int) -> tuple[int, int, int, int]:
        """(held, available, pending, paid) now."""
        cutoff = self.now - self.reserve_days
        held = sum(c for who, c, at in self.earned if who == u and at > cutoff)
        matured = sum(c for who, c, at in self.earned if who == u and at <= cutoff)
        for t in self.takes:
            if t.party == "earning" and t.user == u:
                assert t.at is not None
                if t.at > cutoff:
                    held -= t.cut
                else:
                    matured -= t.cut
        pending = sum(
            p.tokens - p.returned
            for p in self.payouts.values()
            if p.creator == u and p.status in ("pending", "in_transit")
        )
        paid = sum(
            p.tokens - p.returned for p in self.payouts.values() if p.creator == u and p.status == "paid"
        )
        balance = self.bal[u]
        held = max(0, min(held, balance))
        available = max(0, min(matured - pending - paid, balance - held))
        return held, available, pending, paid

    def pay_out(self, payout_id: str, creator: int, tokens: int) -> None:
        self.debit(creator, tokens, allow_debt=False)
        self.payouts[payout_id] = Payout(creator, tokens)

    def return_payout(self, payout_id: str, status: str) -> None:
        payout = self.payouts[payout_id]
        back = payout.tokens - payout.returned
        if back:
            self.credit(payout.creator, back)
        payout.returned = payout.tokens
        payout.status = status
