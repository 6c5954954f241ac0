"""Stripe Connect events (dispatched by lib/stripe_webhooks.HANDLERS, after the signature and event-id checks).

- `account.updated` keeps the creator's payoutsEnabled (and what Stripe still needs) current.
- `transfer.created|updated|reversed` record the payout's transfer and return reversed tokens.
- `payout.paid` marks the payouts it carried paid; `payout.failed|canceled` pulls their transfers back and
  returns the tokens. A Stripe payout names our payout in `metadata.payout_id` when it can; otherwise (Stripe's
  automatic payouts of the connected balance) it carries the account's oldest payouts in transit, first come
  first served, as far as its amount goes.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from lib import ledger
from lib.db import Conn
from lib.payments import stripe_api
from lib.payouts import accounts, transfers

log = logging.getLogger("digis.payouts")

Event = dict[str, Any]


def account_updated(conn: Conn, event: Event) -> None:
    """account.updated: the account's current flags (an older snapshot never overwrites a newer one)."""
    accounts.apply_account_update(conn, event["data"]["object"], event_created=event.get("created"))


def transfer_event(conn: Conn, event: Event) -> None:
    """transfer.*: note the transfer on its payout and return whatever share Stripe reports reversed."""
    transfer = stripe_api.transfer_from(event["data"]["object"])
    payout_id = _payout_for_transfer(conn, transfer)
    if payout_id is None:
        log.info("%s for a transfer that is not a payout: %s", event["type"], transfer.id)
        return
    transfers.record_transfer(conn, payout_id, transfer)


def payout_event(conn: Conn, event: Event) -> None:
    """payout.paid / payout.failed / payout.canceled on a connected account; other payout.* are ignored."""
    kind = event["type"].removeprefix("payout.")
    if kind not in ("paid", "failed", "canceled"):
        return
    account = event.get("account")
    obj = event["data"]["object"]
    if not isinstance(account, str):
        log.info("payout event without a connected account: %s", obj.get("id"))
        return
    owner = conn.execute(
        "SELECT user_id FROM stripe_accounts WHERE stripe_account_id = %(a)s", {"a": account}
    ).fetchone()
    if owner is None:
        log.info("payout event for an account that is not ours: %s", account)
        return
    # The creator before their payouts rows: the ledger's lock order (a transfer.reversed for the same payout
    # takes them in that order too).
    ledger.lock_users(conn, [owner["user_id"]])
    for payout_id in _payouts_carried(conn, account, obj):
        if kind == "paid":
            conn.execute(
                """UPDATE payouts SET status = 'paid', paid_at = coalesce(paid_at, now()), updated_at = now()
                   WHERE id = %(id)s AND status = 'in_transit'""",
                {"id": payout_id},
            )
        else:
            transfers.fail_after_transfer(
                conn,
                payout_id,
                code=str(obj.get("failure_code") or f"payout_{kind}"),
                message=str(obj.get("failure_message") or f"The bank payout was {kind}"),
            )


def _payout_for_transfer(conn: Conn, transfer: stripe_api.Transfer) -> UUID | None:
    claimed = transfer.metadata.get("payout_id")
    row = conn.execute(
        """SELECT id FROM payouts
           WHERE (stripe_transfer_id = %(t)s OR id::text = %(claimed)s) AND stripe_account_id = %(dest)s
           ORDER BY stripe_transfer_id = %(t)s DESC LIMIT 1""",
        {"t": transfer.id, "claimed": claimed or "", "dest": transfer.destination or ""},
    ).fetchone()
    return row["id"] if row else None


def _payouts_carried(conn: Conn, account: str, obj: dict[str, Any]) -> list[UUID]:
    """Our payouts a Stripe payout carried (see the module doc), linked to it on first sight."""
    po_id = str(obj.get("id") or "")
    claimed = (obj.get("metadata") or {}).get("payout_id")
    if claimed:
        rows = conn.execute(
            "SELECT id FROM payouts WHERE id::text = %(c)s AND stripe_account_id = %(a)s",
            {"c": str(claimed), "a": account},
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT id FROM payouts WHERE stripe_payout_id = %(po)s AND stripe_account_id = %(a)s",
            {"po": po_id, "a": account},
        ).fetchall()
        if not rows:
            rows = conn.execute(
                """SELECT id FROM (
                       SELECT id, created_at,
                              sum(amount_cents - amount_reversed_cents) OVER (ORDER BY created_at, id) AS upto
                       FROM payouts
                       WHERE stripe_account_id = %(a)s AND status = 'in_transit' AND stripe_payout_id IS NULL
                   ) p
                   WHERE upto <= %(amount)s ORDER BY created_at, id""",
                {"a": account, "amount": int(obj.get("amount") or 0)},
            ).fetchall()
    ids = [r["id"] for r in rows]
    if ids and po_id:
        conn.execute(
            "UPDATE payouts SET stripe_payout_id = %(po)s, updated_at = now() WHERE id = ANY(%(ids)s)",
            {"po": po_id, "ids": ids},
        )
    if not ids:
        log.info("payout %s on %s matches none of our payouts", po_id, account)
    return ids
