"""Stripe's payment events for token purchases: succeeded intents credit, refunds and disputes claw back.

Dispatched by lib/stripe_webhooks (after the signature and event-id checks), which also routes Connect events to
lib/payouts/webhooks. Repeated or reordered events about one intent are harmless, because `settlement.sync_payment`
moves the ledger to a state, not by a delta per event.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from lib import observability, users
from lib.db import Conn
from lib.payments import settlement, stripe_api

log = logging.getLogger("digis.webhooks")

Event = dict[str, Any]


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
    settlement.record_intent(
        conn,
        user_id=user_id,
        intent=stripe_api.Intent(
            id=str(intent["id"]),
            status="succeeded",
            client_secret=None,
            amount=int(intent.get("amount_received") or intent.get("amount") or 0),
            currency=str(intent.get("currency") or settlement.CURRENCY),
        ),
        tokens=tokens,
    )
    settlement.sync_payment(conn, str(intent["id"]), cause="purchase", event_id=event["id"])


def payment_intent_status_changed(conn: Conn, event: Event) -> None:
    """Track failed, canceled and pending intents on their payments row (no tokens move)."""
    intent = event["data"]["object"]
    if intent.get("id") and intent.get("status"):
        settlement.set_intent_status(conn, str(intent["id"]), str(intent["status"]))


def charge_refunded(conn: Conn, event: Event) -> None:
    """Take back the refunded share of the tokens (what was spent becomes debt)."""
    charge = event["data"]["object"]
    intent_id = charge.get("payment_intent")
    if not intent_id:
        return
    settlement.record_refund(
        conn,
        charge_id=str(charge["id"]),
        intent_id=str(intent_id),
        amount_cents=int(charge.get("amount") or 0),
        refunded_cents=int(charge.get("amount_refunded") or 0),
    )
    settlement.sync_payment(conn, str(intent_id), cause="refund", event_id=event["id"])


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
    settlement.record_dispute(
        conn,
        dispute_id=str(dispute["id"]),
        intent_id=str(intent_id),
        charge_id=dispute.get("charge"),
        amount_cents=int(dispute.get("amount") or 0),
        status=str(dispute.get("status") or ("closed" if closed else "needs_response")),
        closed=closed,
    )
    settlement.sync_payment(
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
