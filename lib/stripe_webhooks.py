"""Stripe webhooks: verify the raw body, record the event id once, dispatch by type to payments and payouts.

Every effect of an event, the record of its id included, is written in the request's one transaction: a failure
anywhere rolls all of it back and answers non-2xx, so Stripe delivers it again and nothing is half-done. A
repeated event id is acknowledged without running anything. The dispatch tables below name every handler
(lib/payments/webhooks for token purchases, lib/payouts/webhooks for Connect); this module sits above both.
An event from a connected account (top-level `account`) only reaches CONNECTED_ACCOUNT_HANDLERS: tokens are bought
on the platform account only, so a creator's own payments, refunds and disputes never move a token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from pydantic import BaseModel

from lib.db import Conn
from lib.payments import stripe_api
from lib.payments import webhooks as payment_events
from lib.payouts import webhooks as payout_events

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


def handler_for(event_type: str, table: dict[str, Handler] | None = None) -> Handler | None:
    """The handler for a type: an exact entry in `table` (HANDLERS by default), else a `prefix.*` entry."""
    handlers = HANDLERS if table is None else table
    target = handlers.get(event_type)
    if target is None:
        prefix = event_type.rsplit(".", 1)[0]
        while target is None and prefix:
            target = handlers.get(prefix + ".*")
            prefix = prefix.rsplit(".", 1)[0] if "." in prefix else ""
    return target


# Event type (or "prefix.*") -> handler, each one imported above (no name is resolved at run time). Events signed
# with either STRIPE_WEBHOOK_SECRET or STRIPE_CONNECT_WEBHOOK_SECRET arrive here; Connect events carry `account`.
HANDLERS: dict[str, Handler] = {
    "account.updated": payout_events.account_updated,
    "transfer.*": payout_events.transfer_event,
    "payout.*": payout_events.payout_event,
    "payment_intent.succeeded": payment_events.payment_intent_succeeded,
    "payment_intent.payment_failed": payment_events.payment_intent_status_changed,
    "payment_intent.canceled": payment_events.payment_intent_status_changed,
    "payment_intent.processing": payment_events.payment_intent_status_changed,
    "payment_intent.requires_action": payment_events.payment_intent_status_changed,
    "charge.refunded": payment_events.charge_refunded,
    "charge.dispute.created": payment_events.dispute_opened,
    "charge.dispute.closed": payment_events.dispute_closed,
}
# Events that happened ON a connected account (top-level `account`) reach only these: the account's own state and
# its bank payouts. Token purchases, refunds and disputes are platform payments only, so a connected account's
# payment_intent.* / charge.* is acknowledged and ignored; transfers are platform objects and never come from here.
CONNECTED_ACCOUNT_HANDLERS: dict[str, Handler] = {
    "account.updated": HANDLERS["account.updated"],
    "payout.*": HANDLERS["payout.*"],
}
