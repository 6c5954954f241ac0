"""One-off ledger writes: transfer, credit, debit (and the locking, fee and debt rules they share)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from lib.config import get_settings
from lib.db import Conn
from lib.errors import PaymentRequired
from lib.ledger.models import PLATFORM_USER_ID, PLATFORM_USERNAME, Entry, Transfer, UserId

# --- fees -----------------------------------------------------------------------------------------------------


def split_fee(amount: int, percent: Decimal | None = None) -> tuple[int, int]:
    """(creator_cut, platform_fee) for `amount`: the fee is floor(amount * percent / 100), the creator keeps the rest."""
    num, den = fee_ratio(percent)
    fee = amount * num // den
    return amount - fee, fee


def fee_ratio(percent: Decimal | None = None) -> tuple[int, int]:
    """PLATFORM_FEE_PERCENT / 100 as an exact integer fraction (numerator, denominator)."""
    pct = Fraction(get_settings().platform_fee_percent if percent is None else percent) / 100
    return pct.numerator, pct.denominator


# --- writes ---------------------------------------------------------------------------------------------------


def transfer(
    conn: Conn,
    *,
    from_user: UserId,
    to_user: UserId,
    amount: int,
    kind: str,
    reference_type: str,
    reference_id: str,
    idempotency_key: str,
    metadata: Mapping[str, Any] | None = None,
) -> Transfer | None:
    """Move `amount` from payer to payee (less the platform fee); None if the key was used; 402 when short."""
    _check_amount(amount)
    payer, payee = as_uuid(from_user), as_uuid(to_user)
    if payer == payee or PLATFORM_USER_ID in (payer, payee):
        raise ValueError("a transfer needs two distinct non-platform users")
    cut, fee = split_fee(amount)
    _lock(conn, [payer, payee], platform=fee > 0)
    entry_id = uuid.uuid4()
    row = conn.execute(
        """
        WITH used AS (
            SELECT 1 FROM token_transactions WHERE idempotency_key = %(key)s
            UNION ALL SELECT 1 FROM token_debts WHERE idempotency_key = %(key)s
        ), debit AS (
            UPDATE users SET token_balance = token_balance - %(amount)s
            WHERE id = %(payer)s AND token_balance >= %(amount)s AND NOT EXISTS (SELECT 1 FROM used)
            RETURNING token_balance
        ), credit AS (
            UPDATE users SET token_balance = token_balance + %(cut)s
            WHERE id = %(payee)s AND EXISTS (SELECT 1 FROM debit)
            RETURNING token_balance, token_debt
        ), fee AS (
            UPDATE users SET token_balance = token_balance + %(fee)s
            WHERE id = %(platform)s AND %(fee)s > 0 AND EXISTS (SELECT 1 FROM debit)
            RETURNING token_balance
        ), legs AS (
            SELECT %(payer)s::uuid AS user_id, %(payee)s::uuid AS counterparty_id, %(kind)s::text AS type,
                   -%(amount)s::bigint AS amount, debit.token_balance AS balance_after, %(key)s::text AS ikey
            FROM debit
            UNION ALL
            SELECT %(payee)s::uuid, %(payer)s::uuid, %(kind)s::text, %(cut)s::bigint, credit.token_balance,
                   %(key)s::text || ':to'
            FROM credit WHERE %(cut)s > 0
            UNION ALL
            SELECT %(platform)s::uuid, %(payer)s::uuid, 'platform_fee', %(fee)s::bigint, fee.token_balance,
                   %(key)s::text || ':fee'
            FROM fee
        ), ins AS (
            INSERT INTO token_transactions (entry_id, user_id, type, amount, balance_after, counterparty_id,
                                            reference_type, reference_id, idempotency_key, metadata)
            SELECT %(entry)s, user_id, type, amount, balance_after, counterparty_id, %(rtype)s, %(rid)s, ikey,
                   %(meta)s
            FROM legs
            RETURNING 1
        ), lots AS (
            -- Provenance: the payer's purchase lots pay for the transfer oldest first (see lib/payments/clawbacks).
            SELECT payment_id, remaining, sum(remaining) OVER (ORDER BY seq) - remaining AS before
            FROM purchase_lots
            WHERE user_id = %(payer)s AND remaining > 0 AND EXISTS (SELECT 1 FROM debit)
        ), spent AS (
            SELECT payment_id, least(remaining, %(amount)s - before) AS tokens FROM lots WHERE before < %(amount)s
        ), lot_use AS (
            UPDATE purchase_lots l SET remaining = l.remaining - spent.tokens
            FROM spent WHERE l.payment_id = spent.payment_id
        ), sources AS (
            INSERT INTO earning_sources (entry_id, payment_id, payee_id, tokens, gross, fee)
            SELECT %(entry)s, payment_id, %(payee)s, tokens, %(amount)s, %(fee)s FROM spent
        )
        SELECT EXISTS (SELECT 1 FROM used) AS used,
               (SELECT token_balance FROM debit) AS from_balance,
               (SELECT token_balance FROM credit) AS to_balance,
               (SELECT token_debt FROM credit) AS to_debt,
               (SELECT count(*) FROM fee) AS fee_rows,
               (SELECT count(*) FROM ins) AS postings,
               (SELECT token_balance FROM users WHERE id = %(payer)s) AS current_balance
        """,
        {
            "key": idempotency_key,
            "amount": amount,
            "cut": cut,
            "fee": fee,
            "payer": payer,
            "payee": payee,
            "platform": PLATFORM_USER_ID,
            "kind": kind,
            "entry": entry_id,
            "rtype": reference_type,
            "rid": reference_id,
            "meta": Jsonb(_meta(metadata, creator_cut=cut, platform_fee=fee)),
        },
    ).fetchone()
    assert row is not None
    if row["used"]:
        return None
    if row["from_balance"] is None:
        raise _insufficient(int(row["current_balance"]), amount)
    if fee > 0 and row["fee_rows"] != 1:
        raise RuntimeError("platform account missing: the fee had nowhere to go")
    to_balance = int(row["to_balance"])
    if row["to_debt"] and to_balance > 0:
        to_balance = _settle_debts(conn, [payee], reference_id=str(entry_id)).get(payee, to_balance)
    return Transfer(
        id=entry_id,
        from_user=payer,
        to_user=payee,
        amount=amount,
        creator_cut=cut,
        platform_fee=fee,
        from_balance=int(row["from_balance"]),
        to_balance=to_balance,
        kind=kind,
        idempotency_key=idempotency_key,
    )


def credit(
    conn: Conn,
    *,
    user_id: UserId,
    amount: int,
    kind: str,
    reference_type: str,
    reference_id: str,
    idempotency_key: str,
    metadata: Mapping[str, Any] | None = None,
) -> Entry | None:
    """Add `amount` tokens (purchase, dispute reversal, adjustment); debt is paid first; None if the key was used."""
    _check_amount(amount)
    user = as_uuid(user_id)
    _lock(conn, [user])
    entry_id = uuid.uuid4()
    row = conn.execute(
        """
        WITH used AS (
            SELECT 1 FROM token_transactions WHERE idempotency_key = %(key)s
            UNION ALL SELECT 1 FROM token_debts WHERE idempotency_key = %(key)s
        ), upd AS (
            UPDATE users SET token_balance = token_balance + %(amount)s
            WHERE id = %(user)s AND NOT EXISTS (SELECT 1 FROM used)
            RETURNING token_balance, token_debt
        ), ins AS (
            INSERT INTO token_transactions (entry_id, user_id, type, amount, balance_after, reference_type,
                                            reference_id, idempotency_key, metadata)
            SELECT %(entry)s, %(user)s, %(kind)s, %(amount)s, upd.token_balance, %(rtype)s, %(rid)s, %(key)s,
                   %(meta)s
            FROM upd
        )
        SELECT (SELECT token_balance FROM upd) AS balance, (SELECT token_debt FROM upd) AS debt
        """,
        {
            "key": idempotency_key,
            "amount": amount,
            "user": user,
            "entry": entry_id,
            "kind": kind,
            "rtype": reference_type,
            "rid": reference_id,
            "meta": Jsonb(_meta(metadata)),
        },
    ).fetchone()
    assert row is not None
    if row["balance"] is None:
        return None
    balance_after, debt_after = int(row["balance"]), int(row["debt"])
    repaid = 0
    if debt_after > 0:
        repaid = min(balance_after, debt_after)
        _settle_debts(conn, [user], reference_id=str(entry_id))
    return Entry(
        id=entry_id,
        user_id=user,
        kind=kind,
        amount=amount,
        balance_change=amount - repaid,
        debt_change=-repaid,
        balance_after=balance_after - repaid,
        debt_after=debt_after - repaid,
    )


def debit(
    conn: Conn,
    *,
    user_id: UserId,
    amount: int,
    kind: str,
    reference_type: str,
    reference_id: str,
    idempotency_key: str,
    metadata: Mapping[str, Any] | None = None,
    allow_debt: bool = False,
) -> Entry | None:
    """Take `amount` tokens; 402 when short, or with `allow_debt` take what there is and record the rest as debt."""
    _check_amount(amount)
    user = as_uuid(user_id)
    _lock(conn, [user])
    entry_id = uuid.uuid4()
    params = {
        "key": idempotency_key,
        "amount": amount,
        "user": user,
        "entry": entry_id,
        "kind": kind,
        "rtype": reference_type,
        "rid": reference_id,
        "meta": Jsonb(_meta(metadata, requested=amount)),
    }
    if not allow_debt:
        row = conn.execute(
            """
            WITH used AS (
                SELECT 1 FROM token_transactions WHERE idempotency_key = %(key)s
                UNION ALL SELECT 1 FROM token_debts WHERE idempotency_key = %(key)s
            ), upd AS (
                UPDATE users SET token_balance = token_balance - %(amount)s
                WHERE id = %(user)s AND token_balance >= %(amount)s AND NOT EXISTS (SELECT 1 FROM used)
                RETURNING token_balance, token_debt
            ), ins AS (
                INSERT INTO token_transactions (entry_id, user_id, type, amount, balance_after, reference_type,
                                                reference_id, idempotency_key, metadata)
                SELECT %(entry)s, %(user)s, %(kind)s, -%(amount)s::bigint, upd.token_balance, %(rtype)s,
                       %(rid)s, %(key)s, %(meta)s
                FROM upd
            )
            SELECT EXISTS (SELECT 1 FROM used) AS used,
                   (SELECT token_balance FROM upd) AS balance, (SELECT token_debt FROM upd) AS debt,
                   (SELECT token_balance FROM users WHERE id = %(user)s) AS current_balance
            """,
            params,
        ).fetchone()
        assert row is not None
        if row["used"]:
            return None
        if row["balance"] is None:
            raise _insufficient(int(row["current_balance"]), amount)
        clamp_lots(conn, [user])
        return Entry(entry_id, user, kind, -amount, -amount, 0, int(row["balance"]), int(row["debt"]))

    # Clawback: the balance part and the debt part of one conditional statement, each with its own posting.
    row = conn.execute(
        """
        WITH used AS (
            SELECT 1 FROM token_transactions WHERE idempotency_key = %(key)s
            UNION ALL SELECT 1 FROM token_debts WHERE idempotency_key = %(key)s
        ), cur AS (
            SELECT token_balance AS bal, token_debt AS debt FROM users WHERE id = %(user)s
        ), upd AS (
            UPDATE users
               SET token_balance = token_balance - least(token_balance, %(amount)s),
                   token_debt = token_debt + (%(amount)s - least(token_balance, %(amount)s))
             WHERE id = %(user)s AND NOT EXISTS (SELECT 1 FROM used)
            RETURNING token_balance, token_debt
        ), tx AS (
            INSERT INTO token_transactions (entry_id, user_id, type, amount, balance_after, reference_type,
                                            reference_id, idempotency_key, metadata)
            SELECT %(entry)s, %(user)s, %(kind)s, upd.token_balance - cur.bal, upd.token_balance, %(rtype)s,
                   %(rid)s, %(key)s, %(meta)s
            FROM upd, cur WHERE upd.token_balance <> cur.bal
        ), dt AS (
            INSERT INTO token_debts (entry_id, user_id, type, amount, debt_after, reference_type, reference_id,
                                     idempotency_key, metadata)
            SELECT %(entry)s, %(user)s, %(kind)s, upd.token_debt - cur.debt, upd.token_debt, %(rtype)s, %(rid)s,
                   %(key)s || ':debt', %(meta)s
            FROM upd, cur WHERE upd.token_debt <> cur.debt
        )
        SELECT EXISTS (SELECT 1 FROM used) AS used, cur.bal, cur.debt,
               (SELECT token_balance FROM upd) AS balance, (SELECT token_debt FROM upd) AS new_debt
        FROM cur
        """,
        params,
    ).fetchone()
    assert row is not None
    if row["used"]:
        return None
    balance_after, debt_after = int(row["balance"]), int(row["new_debt"])
    if balance_after < int(row["bal"]):
        clamp_lots(conn, [user])
    return Entry(
        entry_id,
        user,
        kind,
        -amount,
        balance_after - int(row["bal"]),
        debt_after - int(row["debt"]),
        balance_after,
        debt_after,
    )


# --- internals ------------------------------------------------------------------------------------------------


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"token amounts are positive integers, not {amount!r}")


def _meta(metadata: Mapping[str, Any] | None, **extra: Any) -> dict[str, Any]:
    if not metadata:
        return extra
    # A JSON round trip so ids and decimals in caller metadata are stored as strings.
    merged: dict[str, Any] = json.loads(json.dumps({**metadata, **extra}, default=str))
    return merged


def as_uuid(value: UserId) -> UUID:
    """A UUID from a UUID or its string."""
    return value if isinstance(value, UUID) else UUID(str(value))


def _insufficient(current: int, required: int) -> PaymentRequired:
    return PaymentRequired(
        "Insufficient tokens",
        code="INSUFFICIENT_TOKENS",
        current_balance=current,
        required_amount=required,
    )


def ensure_platform_account(conn: Conn) -> None:
    """Create the platform account row if it is missing (the migration creates it; a wiped table loses it)."""
    conn.execute(
        """INSERT INTO users (id, username, display_name, role, is_creator)
           VALUES (%(id)s, %(u)s, 'Digis platform', 'system', false)
           ON CONFLICT DO NOTHING""",
        {"id": PLATFORM_USER_ID, "u": PLATFORM_USERNAME},
    )


def _lock(conn: Conn, user_ids: Iterable[UUID], *, platform: bool = False) -> None:
    """Lock the users' rows in id order (the one order everyone uses); every user must exist."""
    wanted = set(user_ids)
    if platform:
        ensure_platform_account(conn)
        wanted.add(PLATFORM_USER_ID)
    rows = conn.execute(
        "SELECT id FROM users WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE",
        {"ids": sorted(wanted)},
    ).fetchall()
    if len(rows) != len(wanted):
        missing = wanted - {r["id"] for r in rows}
        raise LookupError(f"no such user(s): {', '.join(sorted(str(m) for m in missing))}")


def clamp_lots(conn: Conn, user_ids: Sequence[UUID]) -> None:
    """Shrink the users' purchase lots (oldest first) to their balance after a debit that is not a transfer.

    A transfer spends lots itself (and records what it spent); any other debit (a refund's fallback, a payout, an
    adjustment) takes tokens no creator received, so the lots just stop counting them.
    """
    conn.execute(
        """
        WITH lots AS (
            SELECT l.payment_id, l.remaining, u.token_balance,
                   sum(l.remaining) OVER (PARTITION BY l.user_id ORDER BY l.seq) - l.remaining AS before,
                   sum(l.remaining) OVER (PARTITION BY l.user_id) AS total
            FROM purchase_lots l JOIN users u ON u.id = l.user_id
            WHERE l.user_id = ANY(%(ids)s) AND l.remaining > 0
        ), excess AS (
            SELECT payment_id, least(remaining, total - token_balance - before) AS take
            FROM lots WHERE before < total - token_balance
        )
        UPDATE purchase_lots l SET remaining = l.remaining - excess.take
        FROM excess WHERE l.payment_id = excess.payment_id
        """,
        {"ids": list(user_ids)},
    )


def lock_users(conn: Conn, user_ids: Iterable[UserId], *, platform: bool = False) -> None:
    """Lock these users' rows in the ledger's one order, before a multi-user operation (no deadlocks)."""
    _lock(conn, [as_uuid(u) for u in user_ids], platform=platform)


def _settle_debts(conn: Conn, user_ids: Sequence[UUID], *, reference_id: str | None) -> dict[UUID, int]:
    """Pay each user's debt from their balance as far as it goes; returns {user: balance after}."""
    rows = conn.execute(
        """
        WITH due AS (
            SELECT id, least(token_balance, token_debt) AS pay, gen_random_uuid() AS entry_id FROM users
            WHERE id = ANY(%(ids)s) AND token_debt > 0 AND token_balance > 0
        ), upd AS (
            UPDATE users u SET token_balance = u.token_balance - due.pay, token_debt = u.token_debt - due.pay
            FROM due WHERE u.id = due.id
            RETURNING u.id, due.pay, due.entry_id, u.token_balance, u.token_debt
        ), tx AS (
            INSERT INTO token_transactions (entry_id, user_id, type, amount, balance_after, reference_type,
                                            reference_id)
            SELECT entry_id, id, 'debt_repayment', -pay, token_balance, 'ledger_entry', %(ref)s FROM upd
        ), dt AS (
            INSERT INTO token_debts (entry_id, user_id, type, amount, debt_after, reference_type, reference_id)
            SELECT entry_id, id, 'debt_repayment', -pay, token_debt, 'ledger_entry', %(ref)s FROM upd
        )
        SELECT id, token_balance FROM upd
        """,
        {"ids": list(user_ids), "ref": reference_id},
    ).fetchall()
    return {r["id"]: int(r["token_balance"]) for r in rows}
