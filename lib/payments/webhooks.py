"""Stripe webhooks: verify the raw body, record the event id once, dispatch by type.

Every effect of an event, the record of its id included, is written in the request's one transaction: a failure
anywhere rolls all of it back and answers non-2xx, so Stripe delivers it again and nothing is half-done. A
repeated event id is acknowledged without running anything; repeated or reordered events about one intent are
harmless anyway, because `purchases.sync_payment` moves the ledger to a state, not by a delta per event.
An event from a connected account (top-level `account`) only reaches CONNECTED_ACCOUNT_HANDLERS: tokens are bought
on the platform account only, so a creator's own payments, refunds and disputes never move a token.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Request
from pydantic import BaseModel

from lib import observability, users
from lib.db import Conn
from lib.payments import purchases, stripe_api

log = logging.getLogger("digis.webhooks")

Event = dict[str, Any]
Handler = Callable[[Conn, Event], None]


class WebhookAck(BaseModel):
    """The 200 answer Stripe needs; the rest is for logs and tests."""

    received: bool = True
    type: str
    duplicate: bool = False
    handled: bool = False


async def verified_event(
    request: Request, stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None
) -> Event:
    """FastAPI dependency: the event from a correctly signed raw body (400 otherwise), before any database work."""
    return stripe_api.verify_webhook(await request.body(), stripe_signature)


StripeEvent = Annotated[Event, Depends(verified_event)]


def handle_event(conn: Conn, event: Event) -> WebhookAck:
    """Record the event id once and run its handler (unknown types are acknowledged and ignored)."""
    first = conn.execute(
        """INSERT INTO stripe_events (id, type, livemode, account)
           VALUES (%(id)s, %(type)s, %(live)s, %(account)s)
           ON CONFLICT (id) DO NOTHING RETURNING id""",
        {
            "id": event["id"],
            "type": event["type"],
            "live": bool(event.get("livemode")),
            "account": event.get("account"),
        },
    ).fetchone()
    if first is None:
        return WebhookAck(type=event["type"], duplicate=True)
    connected = is_connected_account_event(event)
    handler = handler_for(event["type"], CONNECTED_ACCOUNT_HANDLERS if connected else HANDLERS)
    if handler is None:
        if connected and handler_for(event["type"]) is not None:
            # A connected account's own payment, refund or dispute is theirs: never a Digis token purchase.
            log.info("ignoring %s from connected account %s", event["type"], event.get("account"))
        return WebhookAck(type=event["type"])
    handler(conn, event)
    return WebhookAck(type=event["type"], handled=True)


def is_connected_account_event(event: Event) -> bool:
    """An event that happened on a connected account (Stripe sets the top-level `account`), not on the platform."""
    return event.get("account") is not None


def handler_for(event_type: str, table: dict[str, Handler | str] | None = None) -> Handler | None:
    """The handler for a type: an exact entry in `table` (HANDLERS by default), else a `prefix.*` entry."""
    handlers = HANDLERS if table is None else table
    target = handlers.get(event_type)
    if target is None:
        prefix = event_type.rsplit(".", 1)[0]
        while target is None and prefix:
            target = handlers.get(prefix + ".*")
            prefix = prefix.rsplit(".", 1)[0] if "." in prefix else ""
    if isinstance(target, str):
        module, _, name = target.partition(":")
        resolved: Handler = getattr(importlib.import_module(module), name)
        return resolved
    return target


# --- payments ---------------------------------------------------------------------------------------------


def payment_intent_succeeded(conn: Conn, event: Event) -> None:
    """Credit metadata.tokens to metadata.user_id, once per intent."""
    intent = event["data"]["object"]
    owner = _token_metadata(intent.get("metadata"))
    if owner is None:
        log.info("payment_intent.succeeded without token metadata: %s", intent.get("id"))
        return
    user_id, tokens = owner
    if users.get(conn, user_id) is None:
        observability.capture_message(
            "paid intent for an unknown user", intent=intent.get("id"), user_id=str(user_id)
        )
        return
    purchases.record_intent(
        conn,
        user_id=user_id,
        intent=stripe_api.Intent(
            id=str(intent["id"]),
            status="succeeded",
            client_secret=None,
            amount=int(intent.get("amount_received") or intent.get("amount") or 0),
            currency=str(intent.get("currency") or purchases.CURRENCY),
        ),
        tokens=tokens,
    )
    purchases.sync_payment(conn, str(intent["id"]), cause="purchase", event_id=event["id"])


def payment_intent_status_changed(conn: Conn, event: Event) -> None:
    """Track failed, canceled and pending intents on their payments row (no tokens move)."""
    intent = event["data"]["object"]
    if intent.get("id") and intent.get("status"):
        purchases.set_intent_status(conn, str(intent["id"]), str(intent["status"]))


def charge_refunded(conn: Conn, event: Event) -> None:
    """Take back the refunded share of the tokens (what was spent becomes debt)."""
    charge = event["data"]["object"]
    intent_id = charge.get("payment_intent")
    if not intent_id:
        return
    purchases.record_refund(
        conn,
        charge_id=str(charge["id"]),
        intent_id=str(intent_id),
        amount_cents=int(charge.get("amount") or 0),
        refunded_cents=int(charge.get("amount_refunded") or 0),
    )
    purchases.sync_payment(conn, str(intent_id), cause="refund", event_id=event["id"])


def dispute_opened(conn: Conn, event: Event) -> None:
    """Hold the disputed share of the tokens back while the dispute is open."""
    _record_dispute(conn, event, closed=False)


def dispute_closed(conn: Conn, event: Event) -> None:
    """Give the tokens back when the dispute is won; keep them when it is lost."""
    _record_dispute(conn, event, closed=True)


def _record_dispute(conn: Conn, event: Event, *, closed: bool) -> None:
    dispute = event["data"]["object"]
    intent_id = dispute.get("payment_intent")
    if not intent_id:
        observability.capture_message("dispute without a payment intent", dispute=dispute.get("id"))
        return
    purchases.record_dispute(
        conn,
        dispute_id=str(dispute["id"]),
        intent_id=str(intent_id),
        charge_id=dispute.get("charge"),
        amount_cents=int(dispute.get("amount") or 0),
        status=str(dispute.get("status") or ("closed" if closed else "needs_response")),
        closed=closed,
    )
    purchases.sync_payment(
        conn, str(intent_id), cause="dispute_closed" if closed else "dispute", event_id=event["id"]
    )


def _token_metadata(metadata: Any) -> tuple[UUID, int] | None:
    """(user_id, tokens) from our purchase metadata, or None for a payment that is not a token purchase."""
    if not isinstance(metadata, dict):
        return None
    try:
        user_id = UUID(str(metadata["user_id"]))
        tokens = int(str(metadata["tokens"]))
    except (KeyError, ValueError):
        return None
    return (user_id, tokens) if tokens > 0 else None


# Event type (or "prefix.*") -> handler, or "module:function" imported on first use. Events signed with either
# STRIPE_WEBHOOK_SECRET or STRIPE_CONNECT_WEBHOOK_SECRET arrive here; Connect events carry `account`.
HANDLERS: dict[str, Handler | str] = {
    "account.updated": "lib.payouts.webhooks:account_updated",
    "transfer.*": "lib.payouts.webhooks:transfer_event",
    "payout.*": "lib.payouts.webhooks:payout_event",
    "payment_intent.succeeded": payment_intent_succeeded,
    "payment_intent.payment_failed": payment_intent_status_changed,
    "payment_intent.canceled": payment_intent_status_changed,
    "payment_intent.processing": payment_intent_status_changed,
    "payment_intent.requires_action": payment_intent_status_changed,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": dispute_opened,
    "charge.dispute.closed": dispute_closed,
}
# Events that happened ON a connected account (top-level `account`) reach only these: the account's own state and
# its bank payouts. Token purchases, refunds and disputes are platform payments only, so a connected account's
# payment_intent.* / charge.* is acknowledged and ignored; transfers are platform objects and never come from here.
CONNECTED_ACCOUNT_HANDLERS: dict[str, Handler | str] = {
    "account.updated": HANDLERS["account.updated"],
    "payout.*": HANDLERS["payout.*"],
}
