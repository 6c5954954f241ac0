"""A fan pays a creator (or the platform) for one thing, once: the rule every token purchase of an item shares.

Messages, subscriptions, tickets, paid stream access, content, shop orders, offers, recordings and classes all
charge through `charge`: the price comes from the caller (read from the database, never from the client), the
ledger key names the thing bought so a retried or concurrent request can never pay twice, a short balance is a
402 `INSUFFICIENT_TOKENS` with `required`/`current`/`needed` (the frontend reads either spelling), and both
parties get `balance:update` after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from lib import ledger, realtime
from lib.db import Conn
from lib.errors import PaymentRequired


@dataclass(frozen=True)
class Charge:
    """What one `charge` did: `charged` is False when the key was already paid (a retry) or the price is 0."""

    charged: bool
    amount: int
    balance: int  # the payer's balance afterwards
    entry_id: UUID | None = None
    creator_cut: int = 0
    platform_fee: int = 0


def insufficient(current: int, required: int) -> PaymentRequired:
    """The 402 every purchase answers when the balance is short, in both spellings the frontend reads."""
    return PaymentRequired(
        "Insufficient token balance",
        code="INSUFFICIENT_TOKENS",
        required=required,
        current=current,
        needed=required - current,
        current_balance=current,
        required_amount=required,
    )


def charge(
    conn: Conn,
    *,
    payer_id: UUID,
    payee_id: UUID,
    amount: int,
    kind: str,
    reference_type: str,
    reference_id: str,
    idempotency_key: str,
    reason: str,
    metadata: dict[str, Any] | None = None,
) -> Charge:
    """Move `amount` from payer to payee once per `idempotency_key`; 402 when short; balance events queued.

    `kind` is the ledger kind (it decides the creator's earnings bucket, see migrations' `earnings_kind`);
    `reason` names the balance event (`{reason}_sent` to the payer, `{reason}_received` to the payee).
    """
    if amount <= 0:
        return Charge(charged=False, amount=0, balance=ledger.balance(conn, payer_id))
    # Lock both parties first (as the transfer will) so the balance read and the 402 agree with the transfer.
    ledger.lock_users(conn, [payer_id, payee_id], platform=ledger.split_fee(amount)[1] > 0)
    current = ledger.balance(conn, payer_id)
    moved = None
    if current >= amount:
        moved = ledger.transfer(
            conn,
            from_user=payer_id,
            to_user=payee_id,
            amount=amount,
            kind=kind,
            reference_type=reference_type,
            reference_id=reference_id,
            idempotency_key=idempotency_key,
            metadata=metadata,
        )
    elif not ledger.key_was_used(conn, idempotency_key):
        raise insufficient(current, amount)
    if moved is None:  # this key was paid before: a retry, nothing moves
        return Charge(charged=False, amount=amount, balance=current)
    realtime.publish_balance(
        conn, payer_id, balance=moved.from_balance, delta=-moved.amount, reason=f"{reason}_sent"
    )
    realtime.publish_balance(
        conn, moved.to_user, balance=moved.to_balance, delta=moved.creator_cut, reason=f"{reason}_received"
    )
    return Charge(
        charged=True,
        amount=moved.amount,
        balance=moved.from_balance,
        entry_id=moved.id,
        creator_cut=moved.creator_cut,
        platform_fee=moved.platform_fee,
    )
