"""What a refund or dispute of a purchase takes back, and from whom; what a won dispute gives back.

Provenance: each purchase credits a lot (`purchase_lots`); every transfer spends the payer's lots oldest first
and records which purchases paid for it (`earning_sources`, written by the ledger in the transfer's statement).

Taking back `n` tokens of purchase X (bought by fan F):
1. X's tokens still unspent in F's balance (X's lot).
2. Then the earnings X's spent tokens paid for, newest first, so held earnings go before available ones: the
   creator's cut from the creator (their balance; what they no longer have, paid out or spent, becomes the
   creator's debt, which their next earnings repay before anything can be paid out) and the fee from the
   platform account. A transfer's cut and fee are taken in proportion, cumulatively (floor for the fee), so the
   total taken from a transfer never exceeds what its creator and the platform received.
3. The rest (X's tokens that left F some other way: a payout, an adjustment, or a purchase credited before
   provenance existed) from F: their balance, then F's debt.
Giving back (a won dispute) undoes the takes last-first; tokens beyond them are a fresh credit to F.
Every move is a ledger posting and every take a `payment_clawbacks` row, in the caller's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from lib import ledger
from lib.db import Conn

EARNING_REVERSAL = "earning_reversal"
EARNING_REINSTATED = "earning_reinstated"
FEE_REVERSAL = "fee_reversal"
FEE_REINSTATED = "fee_reinstated"


@dataclass(frozen=True)
class Purchase:
    """The payment being clawed back or reinstated."""

    id: UUID
    user_id: UUID
    intent_id: str
    version: int  # the payments.sync_version this change writes


@dataclass
class Moved:
    """What one clawback or reinstatement did to the buyer and to everyone else."""

    fan: ledger.Entry | None = None
    fan_balance: int = 0
    others: list[tuple[UUID, ledger.Entry]] = field(default_factory=list)  # creators, then the platform

    @property
    def fan_delta(self) -> int:
        """Signed change of the buyer's balance."""
        return self.fan.balance_change if self.fan else 0


@dataclass
class _Piece:
    entry_id: UUID
    payee: UUID
    earned_at: datetime
    tokens: int
    cut: int
    fee: int


def take_back(
    conn: Conn, purchase: Purchase, tokens: int, *, kind: str, metadata: Mapping[str, Any]
) -> Moved:
    """Take `tokens` of the purchase back: unspent first, then the earnings it paid for, then the buyer's debt."""
    sources = _lock_parties(conn, purchase, _open_sources)
    lot = _lot(conn, purchase.id)
    unspent = min(tokens, lot)
    rest = tokens - unspent
    pieces: list[_Piece] = []
    for src in sources:
        if rest == 0:
            break
        r = min(rest, int(src["open"]))
        gross, fee, before = int(src["gross"]), int(src["fee"]), int(src["clawed"])
        fee_part = (before + r) * fee // gross - before * fee // gross
        pieces.append(_Piece(src["entry_id"], src["payee_id"], src["created_at"], r, r - fee_part, fee_part))
        rest -= r
    moved = Moved()
    key = f"payment:{purchase.intent_id}:{purchase.version}"
    if unspent:
        conn.execute(
            "UPDATE purchase_lots SET remaining = remaining - %(n)s WHERE payment_id = %(p)s",
            {"n": unspent, "p": purchase.id},
        )
    if unspent + rest:
        # Balance first, then debt; the lot shrank first, so the ledger's own lot clamp leaves other lots alone.
        moved.fan = ledger.debit(
            conn,
            user_id=purchase.user_id,
            amount=unspent + rest,
            kind=kind,
            allow_debt=True,
            **_common(purchase, key, metadata),
        )
        _check_applied(moved.fan, key)
    _move_earnings(conn, purchase, pieces, key, metadata, take=True, moved=moved)
    _record(conn, purchase, unspent + rest, pieces, sign=1)
    moved.fan_balance = moved.fan.balance_after if moved.fan else ledger.balance(conn, purchase.user_id)
    return moved


def give_back(
    conn: Conn, purchase: Purchase, tokens: int, *, kind: str, metadata: Mapping[str, Any]
) -> Moved:
    """Give `tokens` of the purchase back: undo the latest takes first; the rest is a fresh credit to the buyer."""
    taken = _lock_parties(conn, purchase, _outstanding)
    rest = tokens
    to_fan = 0
    pieces: list[_Piece] = []
    for row in taken:
        if rest == 0:
            break
        r = min(rest, int(row["net"]))
        rest -= r
        if row["party"] == "fan":
            to_fan += r
            continue
        gross, fee, before = int(row["gross"]), int(row["fee"]), int(row["clawed"])
        fee_part = before * fee // gross - (before - r) * fee // gross
        pieces.append(_Piece(row["entry_id"], row["user_id"], row["earned_at"], r, r - fee_part, fee_part))
    moved = Moved()
    key = f"payment:{purchase.intent_id}:{purchase.version}"
    credited = to_fan + rest
    if credited:
        moved.fan = ledger.credit(
            conn, user_id=purchase.user_id, amount=credited, kind=kind, **_common(purchase, key, metadata)
        )
        _check_applied(moved.fan, key)
        if moved.fan is not None and moved.fan.balance_change > 0:
            # The tokens are this purchase's again (what repaid the buyer's debt is not in their balance).
            conn.execute(
                """INSERT INTO purchase_lots (payment_id, user_id, remaining) VALUES (%(p)s, %(u)s, %(n)s)
                   ON CONFLICT (payment_id) DO UPDATE SET remaining = purchase_lots.remaining + EXCLUDED.remaining""",
                {"p": purchase.id, "u": purchase.user_id, "n": moved.fan.balance_change},
            )
    _move_earnings(conn, purchase, pieces, key, metadata, take=False, moved=moved)
    _record(conn, purchase, -to_fan, pieces, sign=-1)
    moved.fan_balance = moved.fan.balance_after if moved.fan else ledger.balance(conn, purchase.user_id)
    return moved


# --- internals ------------------------------------------------------------------------------------------------


def _lock_parties(conn: Conn, purchase: Purchase, read: Callable[[Conn, UUID], Sequence[Any]]) -> list[Any]:
    """Read the rows a change needs, lock everyone it may touch in the ledger's order, and read them again.

    The buyer's lock stops new spending of this purchase, so the second read is final; a creator that appears
    only in it (a transfer committed in between) is locked too.
    """
    rows = read(conn, purchase.id)
    locked: set[UUID] = set()
    for _ in range(3):
        wanted = {purchase.user_id} | {r["payee_id"] if "payee_id" in r else r["user_id"] for r in rows}
        ledger.lock_users(conn, wanted - locked, platform=any(int(r["fee"] or 0) for r in rows))
        locked |= wanted
        rows = read(conn, purchase.id)
        if {r["payee_id"] if "payee_id" in r else r["user_id"] for r in rows} <= locked:
            return list(rows)
    raise RuntimeError(f"payment {purchase.intent_id}: its earnings kept changing while being locked")


def _open_sources(conn: Conn, payment_id: UUID) -> Sequence[Any]:
    """The earnings this purchase paid for that still hold some of its tokens, newest first."""
    return conn.execute(
        """SELECT s.entry_id, s.payee_id, s.created_at, s.gross, s.fee,
                  s.tokens - coalesce(mine.total, 0) AS open, coalesce(every.total, 0) AS clawed
           FROM earning_sources s
           LEFT JOIN LATERAL (SELECT sum(c.tokens) AS total FROM payment_clawbacks c
                              WHERE c.entry_id = s.entry_id AND c.payment_id = s.payment_id) mine ON true
           LEFT JOIN LATERAL (SELECT sum(c.tokens) AS total FROM payment_clawbacks c
                              WHERE c.entry_id = s.entry_id) every ON true
           WHERE s.payment_id = %(p)s AND s.tokens > coalesce(mine.total, 0)
           ORDER BY s.seq DESC""",
        {"p": payment_id},
    ).fetchall()


def _outstanding(conn: Conn, payment_id: UUID) -> Sequence[Any]:
    """What this purchase's clawbacks still hold, latest first (with each earning's transfer split)."""
    return conn.execute(
        """SELECT c.party, c.user_id, c.entry_id, c.earned_at, c.net, s.gross, s.fee,
                  coalesce(every.total, 0) AS clawed
           FROM (SELECT party, user_id, entry_id, min(earned_at) AS earned_at, sum(tokens) AS net,
                        max(seq) AS last
                 FROM payment_clawbacks WHERE payment_id = %(p)s
                 GROUP BY party, user_id, entry_id HAVING sum(tokens) > 0) c
           LEFT JOIN earning_sources s ON s.payment_id = %(p)s AND s.entry_id = c.entry_id
           LEFT JOIN LATERAL (SELECT sum(x.tokens) AS total FROM payment_clawbacks x
                              WHERE x.entry_id = c.entry_id) every ON c.entry_id IS NOT NULL
           ORDER BY c.last DESC""",
        {"p": payment_id},
    ).fetchall()


def _lot(conn: Conn, payment_id: UUID) -> int:
    row = conn.execute(
        "SELECT remaining FROM purchase_lots WHERE payment_id = %(p)s", {"p": payment_id}
    ).fetchone()
    return int(row["remaining"]) if row else 0


def _common(purchase: Purchase, key: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "reference_type": "stripe_payment_intent",
        "reference_id": purchase.intent_id,
        "idempotency_key": key,
        "metadata": metadata,
    }


def _move_earnings(
    conn: Conn,
    purchase: Purchase,
    pieces: list[_Piece],
    key: str,
    metadata: Mapping[str, Any],
    *,
    take: bool,
    moved: Moved,
) -> None:
    """One ledger posting per creator (their cuts) and one for the platform account (the fees)."""
    per_creator: dict[UUID, int] = defaultdict(int)
    fees = 0
    for p in pieces:
        per_creator[p.payee] += p.cut
        fees += p.fee
    moves = [(u, n, EARNING_REVERSAL if take else EARNING_REINSTATED) for u, n in sorted(per_creator.items())]
    moves.append((ledger.PLATFORM_USER_ID, fees, FEE_REVERSAL if take else FEE_REINSTATED))
    for user_id, amount, kind in moves:
        if amount <= 0:
            continue
        common = _common(purchase, f"{key}:{kind}:{user_id}", {**metadata, "payment_id": str(purchase.id)})
        if take:
            entry = ledger.debit(conn, user_id=user_id, amount=amount, kind=kind, allow_debt=True, **common)
        else:
            entry = ledger.credit(conn, user_id=user_id, amount=amount, kind=kind, **common)
        _check_applied(entry, f"{key}:{kind}:{user_id}")
        assert entry is not None
        moved.others.append((user_id, entry))


def _check_applied(entry: ledger.Entry | None, key: str) -> None:
    """A sync version's keys are its own: a used one means someone changed the payment without its lock."""
    if entry is None:
        raise RuntimeError(f"ledger key {key} was already used")


def _record(conn: Conn, purchase: Purchase, fan_tokens: int, pieces: list[_Piece], *, sign: int) -> None:
    """The payment_clawbacks rows for one change (signed: +sign for takes)."""
    rows: list[dict[str, Any]] = []
    if fan_tokens:
        rows.append({"party": "fan", "user": purchase.user_id, "entry": None, "at": None, "t": fan_tokens,
                     "c": fan_tokens, "f": 0})  # fmt: skip
    rows += [
        {"party": "earning", "user": p.payee, "entry": p.entry_id, "at": p.earned_at, "t": sign * p.tokens,
         "c": sign * p.cut, "f": sign * p.fee}
        for p in pieces
    ]  # fmt: skip
    if not rows:
        return
    cols: dict[str, list[Any]] = {
        k: [r[k] for r in rows] for k in ("party", "user", "entry", "at", "t", "c", "f")
    }
    conn.execute(
        """INSERT INTO payment_clawbacks (id, payment_id, sync_version, party, user_id, entry_id, earned_at, tokens,
                                          cut_tokens, fee_tokens)
           SELECT gen_random_uuid(), %(p)s, %(v)s, r.party, r.user_id, r.entry_id, r.earned_at, r.t, r.c, r.f
           FROM unnest(%(party)s::text[], %(user)s::uuid[], %(entry)s::uuid[], %(at)s::timestamptz[],
                       %(t)s::bigint[], %(c)s::bigint[], %(f)s::bigint[])
                WITH ORDINALITY AS r(party, user_id, entry_id, earned_at, t, c, f, n)
           ORDER BY r.n""",
        {"p": purchase.id, "v": purchase.version, **cols},
    )
