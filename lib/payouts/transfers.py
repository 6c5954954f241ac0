"""Payouts: available tokens -> a pending payout -> a Stripe transfer to the creator's connected account.

1. `request_payout` (the request's transaction): under the creator's row lock, check the account and the
   amount, insert the payout and take its tokens out of the balance (ledger kind `payout`). The transfer is
   sent only after the commit (`db.after_commit`), so no money moves for a payout the database does not have.
2. `send_transfer` (after the commit; again from the cleanup cron while it is still pending): one Stripe
   transfer with the idempotency key `payout:{id}` and `transfer_group` `payout_{id}`, so a retry, however
   late, never pays twice. A refusal fails the payout and returns its tokens; an outage leaves it pending.
3. Stripe's events finish it (lib/payouts/webhooks): payout.paid marks it paid; transfer.reversed returns the
   reversed share of the tokens; payout.failed takes the money back from the connected account (a transfer
   reversal) and returns the tokens, so a creator is never paid twice for the same tokens.
Tokens that come back are a ledger `payout_reversal` credit (which repays any debt first, like every credit).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from lib import db, ledger, observability, realtime
from lib.config import get_settings
from lib.db import Conn
from lib.errors import BadRequest, ServiceUnavailable
from lib.payments import stripe_api
from lib.payouts import accounts, clock
from lib.payouts.earnings import amount_cents, earnings_of
from lib.payouts.models import PayoutOut, PayoutRequest, PayoutResult
from lib.payouts.preferences import preferences_of
from lib.users import User

log = logging.getLogger("digis.payouts")

CURRENCY = "usd"
PAYOUT = "payout"
PAYOUT_REVERSAL = "payout_reversal"
RETRY_AFTER = timedelta(minutes=2)  # leave a fresh payout to its own after-commit send first
ALERT_AFTER_ATTEMPTS = 5

PAYOUT_COLUMNS = """id, creator_id, stripe_account_id, tokens, amount_cents, status, tokens_returned,
    amount_reversed_cents, stripe_transfer_id, stripe_payout_id, attempts, failure_code, failure_message,
    created_at, transferred_at, paid_at, failed_at"""


def request_payout(
    conn: Conn, creator: User, req: PayoutRequest | None, *, now: datetime | None = None, send: bool = True
) -> PayoutResult:
    """Move available tokens (`req.tokens`, else all but the reserved ones) into a pending payout.

    Its transfer goes after the commit.
    """
    now = now or clock.now()
    req = req or PayoutRequest()
    # The creator's row lock serialises payout requests (and every balance change) for this creator, so two
    # concurrent requests see each other: one payout, not two.
    ledger.lock_users(conn, [creator.id])
    account = accounts.account_of(conn, creator.id)
    if account is None or not account.payoutsEnabled:
        raise BadRequest(
            "Payouts are not enabled for your account yet: finish Stripe onboarding first",
            code="PAYOUTS_NOT_ENABLED",
            onboardingStarted=account is not None,
        )
    mine = earnings_of(conn, creator.id, now)
    minimum = get_settings().payout_minimum_tokens
    tokens = req.tokens if req.tokens is not None else preferences_of(conn, creator.id).withdrawable(mine)
    if tokens < minimum:
        raise BadRequest(
            f"The minimum payout is {minimum} tokens; you have {mine.available} available "
            f"({mine.held} more are held for the reserve period)",
            code="BELOW_MINIMUM",
            minimumTokens=minimum,
            availableTokens=mine.available,
            heldTokens=mine.held,
        )
    if tokens > mine.available:
        raise BadRequest(
            f"Only {mine.available} tokens are available for payout ({mine.held} are held for the reserve period)",
            code="INSUFFICIENT_AVAILABLE_TOKENS",
            availableTokens=mine.available,
            heldTokens=mine.held,
        )
    payout_id = uuid.uuid4()
    row = conn.execute(
        f"""INSERT INTO payouts (id, creator_id, stripe_account_id, tokens, amount_cents, currency, token_usd_value)
            VALUES (%(id)s, %(u)s, %(a)s, %(t)s, %(c)s, %(cur)s, %(v)s)
            RETURNING {PAYOUT_COLUMNS}""",  # noqa: S608 - fixed text
        {
            "id": payout_id,
            "u": creator.id,
            "a": account.id,
            "t": tokens,
            "c": amount_cents(tokens),
            "cur": CURRENCY,
            "v": get_settings().token_usd_value,
        },
    ).fetchone()
    entry = ledger.debit(
        conn,
        user_id=creator.id,
        amount=tokens,
        kind=PAYOUT,
        reference_type="payout",
        reference_id=str(payout_id),
        idempotency_key=f"payout:{payout_id}",
        metadata={"stripe_account": account.id, "amount_cents": amount_cents(tokens)},
    )
    assert entry is not None  # a fresh payout id is a fresh key
    realtime.publish_balance(
        conn, creator.id, balance=entry.balance_after, delta=entry.balance_change, reason=PAYOUT
    )
    if send:
        db.after_commit(conn, lambda: send_transfer(payout_id))
    return PayoutResult(payout=payout_out(row))


def send_transfer(payout_id: UUID, *, look_up_first: bool = False) -> str:
    """Make (or find) the payout's Stripe transfer and record the outcome; the payout's status afterwards."""
    with db.transaction() as conn:
        payout = _get(conn, payout_id)
    if payout is None or payout["status"] != "pending":
        return payout["status"] if payout else "missing"
    group = f"payout_{payout_id}"
    try:
        found = stripe_api.find_transfer(group) if look_up_first else None
        transfer = found or stripe_api.create_transfer(
            amount_cents=int(payout["amount_cents"]),
            currency=CURRENCY,
            destination=payout["stripe_account_id"],
            metadata={
                "payout_id": str(payout_id),
                "creator_id": str(payout["creator_id"]),
                "tokens": str(payout["tokens"]),
            },
            transfer_group=group,
            idempotency_key=f"payout:{payout_id}",
        )
    except stripe_api.Refused as exc:
        with db.transaction() as conn:
            return fail_pending(conn, payout_id, code=exc.code, message=exc.message)
    except ServiceUnavailable as exc:
        with db.transaction() as conn:
            attempts = _note_attempt(conn, payout_id, repr(exc.__cause__ or exc))
        if attempts >= ALERT_AFTER_ATTEMPTS:
            observability.capture_message(
                "payout transfer keeps failing", payout=str(payout_id), attempts=attempts
            )
        return "pending"
    with db.transaction() as conn:
        record_transfer(conn, payout_id, transfer)
        status = _get(conn, payout_id)
    return str(status["status"]) if status else "missing"


def retry_stalled_transfers(now: datetime, *, limit: int = 50) -> dict[str, int]:
    """The cron step: send every payout still pending after RETRY_AFTER (looking for an earlier transfer first)."""
    with db.transaction() as conn:
        rows = conn.execute(
            """SELECT id FROM payouts WHERE status = 'pending' AND created_at <= %(before)s
               ORDER BY created_at LIMIT %(limit)s""",
            {"before": now - RETRY_AFTER, "limit": limit},
        ).fetchall()
    outcome: dict[str, int] = {"checked": len(rows)}
    for r in rows:
        status = send_transfer(r["id"], look_up_first=True)
        outcome[status] = outcome.get(status, 0) + 1
    return outcome


def record_transfer(conn: Conn, payout_id: UUID, transfer: stripe_api.Transfer) -> None:
    """Note the payout's transfer (once) and apply any reversal it already carries."""
    payout = _lock(conn, payout_id)
    if payout is None:
        return
    if payout["stripe_transfer_id"] is None:
        conn.execute(
            """UPDATE payouts SET stripe_transfer_id = %(t)s, transferred_at = now(), updated_at = now(),
                      status = CASE WHEN status = 'pending' THEN 'in_transit' ELSE status END
               WHERE id = %(id)s""",
            {"t": transfer.id, "id": payout_id},
        )
    if transfer.amount_reversed > int(payout["amount_reversed_cents"]):
        apply_reversal(conn, payout_id, transfer.amount_reversed)


def apply_reversal(conn: Conn, payout_id: UUID, reversed_cents: int) -> None:
    """Stripe says this much of the transfer came back: return that share of the tokens (cumulative, floored)."""
    payout = _lock(conn, payout_id)
    if payout is None or reversed_cents <= int(payout["amount_reversed_cents"]):
        return
    amount = int(payout["amount_cents"])
    reversed_cents = min(reversed_cents, amount)
    tokens = int(payout["tokens"])
    target = tokens if reversed_cents >= amount else tokens * reversed_cents // amount
    conn.execute(
        "UPDATE payouts SET amount_reversed_cents = %(r)s, updated_at = now() WHERE id = %(id)s",
        {"r": reversed_cents, "id": payout_id},
    )
    _return_tokens(conn, payout, target, status="reversed")


def fail_pending(conn: Conn, payout_id: UUID, *, code: str, message: str) -> str:
    """Stripe refused the transfer: the payout failed and all its tokens go back to the creator."""
    payout = _lock(conn, payout_id)
    if payout is None or payout["status"] != "pending":
        return payout["status"] if payout else "missing"
    _set_failure(conn, payout_id, code, message)
    _return_tokens(conn, payout, int(payout["tokens"]), status="failed")
    return "failed"


def fail_after_transfer(conn: Conn, payout_id: UUID, *, code: str, message: str) -> None:
    """The bank payout failed: pull the transfer back from the connected account, then return the tokens.

    Returning tokens while the money sat in the creator's Stripe balance would pay them twice (Stripe retries
    the bank payout later). A refused reversal keeps the tokens out and alerts; an outage raises, so the event
    is delivered again (the reversal's key makes that safe).
    """
    payout = _lock(conn, payout_id)
    if payout is None or payout["status"] not in ("in_transit", "paid"):
        return
    _set_failure(conn, payout_id, code, message)
    remaining = int(payout["amount_cents"]) - int(payout["amount_reversed_cents"])
    if payout["stripe_transfer_id"] and remaining > 0:
        try:
            stripe_api.reverse_transfer(
                payout["stripe_transfer_id"],
                idempotency_key=f"payout:{payout_id}:reversal",
                metadata={"payout_id": str(payout_id), "reason": code},
            )
        except stripe_api.Refused as exc:
            conn.execute(
                "UPDATE payouts SET last_error = %(e)s, updated_at = now() WHERE id = %(id)s",
                {"e": f"reversal refused: {exc.code}", "id": payout_id},
            )
            observability.capture_message(
                "failed payout: transfer reversal refused; tokens kept out",
                payout=str(payout_id),
                code=exc.code,
            )
            return
    conn.execute(
        "UPDATE payouts SET amount_reversed_cents = amount_cents, updated_at = now() WHERE id = %(id)s",
        {"id": payout_id},
    )
    _return_tokens(conn, payout, int(payout["tokens"]), status="failed")


def payout_out(row: Any) -> PayoutOut:
    """A payouts row as the creator sees it."""
    return PayoutOut(
        id=row["id"],
        tokens=int(row["tokens"]),
        amountCents=int(row["amount_cents"]),
        status=row["status"],
        tokensReturned=int(row["tokens_returned"]),
        createdAt=row["created_at"],
        transferredAt=row["transferred_at"],
        paidAt=row["paid_at"],
        failedAt=row["failed_at"],
        failureCode=row["failure_code"],
        failureMessage=row["failure_message"],
    )


# --- internals ------------------------------------------------------------------------------------------------


def _get(conn: Conn, payout_id: UUID) -> Any:
    return conn.execute(
        f"SELECT {PAYOUT_COLUMNS} FROM payouts WHERE id = %(id)s",  # noqa: S608 - fixed text
        {"id": payout_id},
    ).fetchone()


def _lock(conn: Conn, payout_id: UUID) -> Any:
    """The payout, locked after its creator (the ledger's order: user rows before anything else)."""
    found = conn.execute("SELECT creator_id FROM payouts WHERE id = %(id)s", {"id": payout_id}).fetchone()
    if found is None:
        return None
    ledger.lock_users(conn, [found["creator_id"]])
    return conn.execute(
        f"SELECT {PAYOUT_COLUMNS} FROM payouts WHERE id = %(id)s FOR UPDATE",  # noqa: S608 - fixed text
        {"id": payout_id},
    ).fetchone()


def _set_failure(conn: Conn, payout_id: UUID, code: str, message: str) -> None:
    conn.execute(
        """UPDATE payouts SET failure_code = %(c)s, failure_message = %(m)s, failed_at = now(), updated_at = now()
           WHERE id = %(id)s""",
        {"c": code[:100], "m": message[:500], "id": payout_id},
    )


def _note_attempt(conn: Conn, payout_id: UUID, error: str) -> int:
    row = conn.execute(
        """UPDATE payouts SET attempts = attempts + 1, last_error = %(e)s, updated_at = now()
           WHERE id = %(id)s AND status = 'pending' RETURNING attempts""",
        {"e": error[:500], "id": payout_id},
    ).fetchone()
    return int(row["attempts"]) if row else 0


def _return_tokens(conn: Conn, payout: Any, target: int, *, status: str) -> None:
    """Bring tokens_returned up to `target` with one payout_reversal credit; all of them back ends the payout."""
    delta = target - int(payout["tokens_returned"])
    if delta <= 0:
        return
    payout_id = payout["id"]
    entry = ledger.credit(
        conn,
        user_id=payout["creator_id"],
        amount=delta,
        kind=PAYOUT_REVERSAL,
        reference_type="payout",
        reference_id=str(payout_id),
        idempotency_key=f"payout:{payout_id}:returned:{target}",
        metadata={"status": status},
    )
    if entry is None:  # keyed by the cumulative target: already returned under the payout's lock
        return
    conn.execute(
        """UPDATE payouts SET tokens_returned = %(t)s, updated_at = now(),
                  status = CASE WHEN %(t)s = tokens THEN %(s)s ELSE status END
           WHERE id = %(id)s""",
        {"t": target, "s": status, "id": payout_id},
    )
    realtime.publish_balance(
        conn,
        payout["creator_id"],
        balance=entry.balance_after,
        delta=entry.balance_change,
        reason=PAYOUT_REVERSAL,
    )
