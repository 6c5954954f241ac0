"""Transfers: `transfer_many` moves N payer -> payee amounts in a few statements; `transfer` is one of them.

One rule for both (the billing sweep and a single tip share every line): users locked in id order, used keys
skipped, no balance below zero, the platform fee split by `split_fee`'s rule, the payer's purchase lots spent
oldest first with their provenance (`earning_sources`) written in the same statement, and debts paid from the
credited balances afterwards.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from psycopg import sql

from lib.db import Conn
from lib.ledger.models import PLATFORM_USER_ID, Transfer, TransferOutcome, TransferRequest, UserId
from lib.ledger.postings import (
    _check_amount,
    _insufficient,
    _lock,
    _meta,
    as_uuid,
    fee_ratio,
    key_used,
    settle_debts,
)


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
    """Move `amount` from payer to payee (less the platform fee); None if the key was used; 402 when short.

    `to_balance` is the payee's balance after any debt the credit repaid.
    """
    request = TransferRequest(
        from_user, to_user, amount, kind, reference_type, reference_id, idempotency_key, metadata
    )
    [outcome], settled = _transfer_many(conn, [request])
    if outcome.status == "duplicate":
        return None
    if outcome.transfer is None:
        raise _insufficient(int(outcome.current_balance or 0), amount)
    moved = outcome.transfer
    if moved.to_user in settled:
        moved = dataclasses.replace(moved, to_balance=settled[moved.to_user])
    return moved


def transfer_many(conn: Conn, transfers: Sequence[TransferRequest]) -> list[TransferOutcome]:
    """Many transfers in a few statements (the billing sweep), outcomes in request order.

    Same guarantees as `transfer`: users locked in id order, used keys skipped (`duplicate`, also for a key
    repeated inside the batch), and no balance below zero. A payer's requests are taken in order against the
    payer's balance at the start of the batch; once one does not fit, that payer's later requests are refused
    too (`insufficient`, with the payer's balance after the batch). `to_balance` is the payee's balance right
    after that credit (before any debt repayment the batch triggers).
    """
    return _transfer_many(conn, transfers)[0]


def _transfer_many(
    conn: Conn, transfers: Sequence[TransferRequest]
) -> tuple[list[TransferOutcome], dict[UUID, int]]:
    """`transfer_many`, and the balances of the users whose debts the credits repaid ({user: balance after})."""
    if not transfers:
        return [], {}
    outcomes: list[TransferOutcome | None] = [None] * len(transfers)
    seen: set[str] = set()
    idx: list[int] = []
    cols: dict[str, list[Any]] = {
        k: [] for k in ("from", "to", "amount", "cut", "fee", "kind", "rt", "ri", "key", "meta")
    }
    num, den = fee_ratio()
    for i, req in enumerate(transfers):
        _check_amount(req.amount)
        payer, payee = as_uuid(req.from_user), as_uuid(req.to_user)
        if payer == payee or PLATFORM_USER_ID in (payer, payee):
            raise ValueError("a transfer needs two distinct non-platform users")
        if req.idempotency_key in seen:
            outcomes[i] = TransferOutcome(req, "duplicate")
            continue
        seen.add(req.idempotency_key)
        fee = req.amount * num // den  # split_fee's rule, with the ratio read once per batch
        cut = req.amount - fee
        idx.append(i)
        for name, value in (
            ("from", payer),
            ("to", payee),
            ("amount", req.amount),
            ("cut", cut),
            ("fee", fee),
            ("kind", req.kind),
            ("rt", req.reference_type),
            ("ri", req.reference_id),
            ("key", req.idempotency_key),
            ("meta", json.dumps(_meta(req.metadata, creator_cut=cut, platform_fee=fee))),
        ):
            cols[name].append(value)
    any_fee = any(f > 0 for f in cols["fee"])
    _lock(conn, [*cols["from"], *cols["to"]], platform=any_fee)
    rows = conn.execute(
        sql.SQL("""
        WITH req AS (
            SELECT * FROM unnest(%(idx)s::int[], %(from)s::uuid[], %(to)s::uuid[], %(amount)s::bigint[],
                                 %(cut)s::bigint[], %(fee)s::bigint[], %(kind)s::text[], %(rt)s::text[],
                                 %(ri)s::text[], %(key)s::text[], %(meta)s::text[])
                     AS r(idx, from_id, to_id, amount, cut, fee, kind, rtype, rid, ikey, meta)
        ), fresh AS (
            SELECT r.* FROM req r
            WHERE NOT {used}
        ), ranked AS (
            -- entry_id is set for the requests that fit their payer's balance (the `ok` ones).
            SELECT w.*, CASE WHEN w.running <= w.start_balance THEN gen_random_uuid() END AS entry_id
            FROM (SELECT f.*, u.token_balance AS start_balance,
                         sum(f.amount) OVER (PARTITION BY f.from_id ORDER BY f.idx) AS running
                  FROM fresh f JOIN users u ON u.id = f.from_id) AS w
        ), ok AS (
            SELECT * FROM ranked WHERE entry_id IS NOT NULL
        ), legs AS (
            SELECT entry_id, idx, 0 AS side, from_id AS user_id, to_id AS counterparty_id, -amount AS amount,
                   kind AS type, rtype, rid, ikey, meta
            FROM ok
            UNION ALL
            SELECT entry_id, idx, 1, to_id, from_id, cut, kind, rtype, rid, ikey || ':to', meta FROM ok WHERE cut > 0
            UNION ALL
            SELECT entry_id, idx, 2, %(platform)s::uuid, from_id, fee, 'platform_fee', rtype, rid, ikey || ':fee',
                   meta
            FROM ok WHERE fee > 0
        ), chained AS (
            SELECT l.*, u.token_balance
                        + sum(l.amount) OVER (PARTITION BY l.user_id ORDER BY l.idx, l.side) AS balance_after
            FROM legs l JOIN users u ON u.id = l.user_id
        ), after AS (
            SELECT idx, max(balance_after) FILTER (WHERE side = 0) AS from_balance,
                   max(balance_after) FILTER (WHERE side = 1) AS to_balance
            FROM chained GROUP BY idx
        ), net AS (
            -- A payee whose cut is 0 (a fee of 100 percent) still gets a +0 row, so every payee's balance comes back.
            SELECT user_id, sum(amount) AS delta
            FROM (SELECT user_id, amount FROM legs UNION ALL SELECT to_id, 0 FROM ok) AS moves
            GROUP BY user_id
        ), upd AS (
            UPDATE users u SET token_balance = u.token_balance + net.delta
            FROM net WHERE u.id = net.user_id
            RETURNING u.id, u.token_balance, u.token_debt
        ), ins AS (
            INSERT INTO token_transactions (entry_id, user_id, type, amount, balance_after, counterparty_id,
                                            reference_type, reference_id, idempotency_key, metadata)
            SELECT entry_id, user_id, type, amount, balance_after, counterparty_id, rtype, rid, ikey, meta::jsonb
            FROM chained ORDER BY user_id, idx, side
        ), lots AS (
            -- Provenance: each payer's purchase lots pay for its transfers oldest first, in request order.
            SELECT l.user_id, l.payment_id, l.remaining,
                   sum(l.remaining) OVER (PARTITION BY l.user_id ORDER BY l.seq) - l.remaining AS before
            FROM purchase_lots l
            WHERE l.remaining > 0 AND l.user_id IN (SELECT from_id FROM ok)
        ), spent AS (
            SELECT ok.entry_id, ok.to_id, ok.amount, ok.fee, lots.payment_id,
                   least(ok.running, lots.before + lots.remaining)
                   - greatest(ok.running - ok.amount, lots.before) AS tokens
            FROM ok JOIN lots ON lots.user_id = ok.from_id
                             AND lots.before < ok.running AND lots.before + lots.remaining > ok.running - ok.amount
        ), lot_use AS (
            UPDATE purchase_lots l SET remaining = l.remaining - s.tokens
            FROM (SELECT payment_id, sum(tokens) AS tokens FROM spent GROUP BY payment_id) AS s
            WHERE l.payment_id = s.payment_id
        ), sources AS (
            INSERT INTO earning_sources (entry_id, payment_id, payee_id, tokens, gross, fee)
            SELECT entry_id, payment_id, to_id, tokens, amount, fee FROM spent
        )
        SELECT r.idx, (rk.idx IS NOT NULL) AS fresh, rk.entry_id, rk.cut, rk.fee, a.from_balance,
               coalesce(a.to_balance, tu.token_balance) AS to_balance,
               coalesce(fu.token_balance, rk.start_balance) AS payer_now,
               (SELECT coalesce(array_agg(id), '{{}}') FROM upd WHERE token_debt > 0 AND token_balance > 0)
                   AS indebted
        FROM req r
        LEFT JOIN ranked rk ON rk.idx = r.idx
        LEFT JOIN after a ON a.idx = r.idx
        LEFT JOIN upd fu ON fu.id = r.from_id
        LEFT JOIN upd tu ON tu.id = r.to_id
        ORDER BY r.idx
        """).format(used=key_used(sql.Identifier("r", "ikey"))),
        {"idx": list(range(len(idx))), "platform": PLATFORM_USER_ID, **cols},
    ).fetchall()
    indebted: list[UUID] = []
    for row in rows:
        i = idx[row["idx"]]
        req = transfers[i]
        indebted = list(row["indebted"])
        if not row["fresh"]:
            outcomes[i] = TransferOutcome(req, "duplicate")
        elif row["entry_id"] is None:
            outcomes[i] = TransferOutcome(req, "insufficient", current_balance=int(row["payer_now"]))
        else:
            outcomes[i] = TransferOutcome(
                req,
                "ok",
                Transfer(
                    id=row["entry_id"],
                    from_user=as_uuid(req.from_user),
                    to_user=as_uuid(req.to_user),
                    amount=req.amount,
                    creator_cut=int(row["cut"]),
                    platform_fee=int(row["fee"]),
                    from_balance=int(row["from_balance"]),
                    to_balance=int(row["to_balance"]),
                    kind=req.kind,
                    idempotency_key=req.idempotency_key,
                ),
            )
    # A repayment references the last entry that credited its user (users with a debt hold no tokens otherwise).
    paid_by: dict[UUID, str] = {}
    for o in outcomes:
        if o is not None and o.transfer is not None:
            paid_by[o.transfer.to_user] = str(o.transfer.id)
    settled = settle_debts(conn, {u: paid_by.get(u) for u in indebted}) if indebted else {}
    return [o for o in outcomes if o is not None], settled
