"""One-sided ledger writes: credit, debit (and the locking, fee, key and debt rules they share with transfers)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from lib.config import get_settings
from lib.db import Conn
from lib.errors import PaymentRequired
from lib.ledger.models import PLATFORM_USER_ID, PLATFORM_USERNAME, Entry, UserId

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
        sql.SQL("""
        WITH used AS (SELECT {used} AS used), upd AS (
            UPDATE users SET token_balance = token_balance + %(amount)s
            WHERE id = %(user)s AND NOT (SELECT used FROM used)
            RETURNING token_balance, token_debt
        ), ins AS (
            INSERT INTO token_transactions (entry_id, user_id, type, amount, balance_after, reference_type,
                                            reference_id, idempotency_key, metadata)
            SELECT %(entry)s, %(user)s, %(kind)s, %(amount)s, upd.token_balance, %(rtype)s, %(rid)s, %(key)s,
                   %(meta)s
            FROM upd
        )
        SELECT (SELECT token_balance FROM upd) AS balance, (SELECT token_debt FROM upd) AS debt
        """).format(used=key_used(sql.Placeholder("key"))),
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
        settle_debts(conn, {user: str(entry_id)})
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
            sql.SQL("""
            WITH used AS (SELECT {used} AS used), upd AS (
                UPDATE users SET token_balance = token_balance - %(amount)s
                WHERE id = %(user)s AND token_balance >= %(amount)s AND NOT (SELECT used FROM used)
                RETURNING token_balance, token_debt
            ), ins AS (
                INSERT INTO token_transactions (entry_id, user_id, type, amount, balance_after, reference_type,
                                                reference_id, idempotency_key, metadata)
                SELECT %(entry)s, %(user)s, %(kind)s, -%(amount)s::bigint, upd.token_balance, %(rtype)s,
                       %(rid)s, %(key)s, %(meta)s
                FROM upd
            )
            SELECT (SELECT used FROM used) AS used,
                   (SELECT token_balance FROM upd) AS balance, (SELECT token_debt FROM upd) AS debt,
                   (SELECT token_balance FROM users WHERE id = %(user)s) AS current_balance
            """).format(used=key_used(sql.Placeholder("key"))),
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
        sql.SQL("""
        WITH used AS (SELECT {used} AS used), cur AS (
            SELECT token_balance AS bal, token_debt AS debt FROM users WHERE id = %(user)s
        ), upd AS (
            UPDATE users
               SET token_balance = token_balance - least(token_balance, %(amount)s),
                   token_debt = token_debt + (%(amount)s - least(token_balance, %(amount)s))
             WHERE id = %(user)s AND NOT (SELECT used FROM used)
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
        SELECT (SELECT used FROM used) AS used, cur.bal, cur.debt,
               (SELECT token_balance FROM upd) AS balance, (SELECT token_debt FROM upd) AS new_debt
        FROM cur
        """).format(used=key_used(sql.Placeholder("key"))),
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


def key_used(key: sql.Composable) -> sql.Composed:
    """SQL that is true when the idempotency key `key` (a placeholder or column) was used in either ledger."""
    # The one rule: a key is spent by a posting in token_transactions or token_debts (a transfer's payee and fee
    # legs add ':to' and ':fee', a clawback's debt part ':debt', so only the caller's own key is checked).
    return sql.SQL(
        "(EXISTS (SELECT 1 FROM token_transactions WHERE idempotency_key = {key})"
        " OR EXISTS (SELECT 1 FROM token_debts WHERE idempotency_key = {key}))"
    ).format(key=key)


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


def settle_debts(conn: Conn, references: Mapping[UUID, str | None]) -> dict[UUID, int]:
    """Pay each user's debt from their balance as far as it goes, each repayment referencing the entry that paid it.

    `references` maps a user to the ledger entry id that brought the tokens; returns {user: balance after}.
    """
    rows = conn.execute(
        """
        WITH due AS (
            SELECT u.id, least(u.token_balance, u.token_debt) AS pay, gen_random_uuid() AS entry_id, w.ref
            FROM users u JOIN unnest(%(ids)s::uuid[], %(refs)s::text[]) AS w(id, ref) ON w.id = u.id
            WHERE u.token_debt > 0 AND u.token_balance > 0
        ), upd AS (
            UPDATE users u SET token_balance = u.token_balance - due.pay, token_debt = u.token_debt - due.pay
            FROM due WHERE u.id = due.id
            RETURNING u.id, due.pay, due.entry_id, due.ref, u.token_balance, u.token_debt
        ), tx AS (
            INSERT INTO token_transactions (entry_id, user_id, type, amount, balance_after, reference_type,
                                            reference_id)
            SELECT entry_id, id, 'debt_repayment', -pay, token_balance, 'ledger_entry', ref FROM upd
        ), dt AS (
            INSERT INTO token_debts (entry_id, user_id, type, amount, debt_after, reference_type, reference_id)
            SELECT entry_id, id, 'debt_repayment', -pay, token_debt, 'ledger_entry', ref FROM upd
        )
        SELECT id, token_balance FROM upd
        """,
        {"ids": list(references), "refs": list(references.values())},
    ).fetchall()
    return {r["id"]: int(r["token_balance"]) for r in rows}
