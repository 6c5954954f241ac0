"""The one place the Stripe SDK is imported: a configured client, the calls we make, and webhook verification.

Everything returned is a plain value (no StripeObject leaves this module). Calls time out after
STRIPE_TIMEOUT_S; connection errors, 409 and 5xx answers are retried by the SDK with the same idempotency key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from lib import observability
from lib.config import get_settings, settings_cached
from lib.errors import BadRequest, PaymentRequired, ServiceUnavailable, Unprocessable

if TYPE_CHECKING:
    import stripe

log = logging.getLogger("digis.stripe")

WEBHOOK_TOLERANCE_S = 300
MAX_NETWORK_RETRIES = 2


@dataclass(frozen=True)
class Intent:
    """What we keep of a PaymentIntent."""

    id: str
    status: str
    client_secret: str | None
    amount: int
    currency: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckoutSession:
    """What we keep of a Checkout Session."""

    id: str
    url: str | None
    payment_intent: str | None


@settings_cached
def client() -> stripe.StripeClient:
    """A StripeClient for STRIPE_SECRET_KEY (and STRIPE_API_BASE locally)."""
    import stripe

    s = get_settings()
    base = {"api": s.stripe_api_base.rstrip("/")} if s.stripe_api_base else None
    return stripe.StripeClient(
        s.stripe_secret_key.get_secret_value(),
        base_addresses=base,  # type: ignore[arg-type]
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=s.stripe_timeout_s),
    )


def create_purchase_intent(
    *,
    amount_cents: int,
    currency: str,
    payment_method: str,
    metadata: Mapping[str, str],
    idempotency_key: str,
) -> Intent:
    """Create and confirm a card PaymentIntent now; the client finishes 3-D Secure with the client_secret."""
    params: dict[str, Any] = {
        "amount": amount_cents,
        "currency": currency,
        "payment_method": payment_method,
        "confirm": True,
        "metadata": dict(metadata),
    }
    if get_settings().stripe_api_base:
        # localstripe predates automatic payment methods and refuses the parameter; it takes the older form.
        params["payment_method_types"] = ["card"]
    else:
        # Confirming server-side without a return_url: only methods that never redirect (3-D Secure still works
        # in place through the client_secret).
        params["automatic_payment_methods"] = {"enabled": True, "allow_redirects": "never"}
    with _stripe_errors():
        intent = client().v1.payment_intents.create(
            params=cast(Any, params), options={"idempotency_key": idempotency_key}
        )
    return _intent(intent)


def create_checkout_session(
    *,
    amount_cents: int,
    currency: str,
    product_name: str,
    metadata: Mapping[str, str],
    success_url: str,
    cancel_url: str,
    idempotency_key: str,
) -> CheckoutSession:
    """A hosted Checkout Session for one pack; the same metadata rides on its PaymentIntent."""
    with _stripe_errors():
        session = client().v1.checkout.sessions.create(
            params=cast(
                Any,
                {
                    "mode": "payment",
                    "line_items": [
                        {
                            "quantity": 1,
                            "price_data": {
                                "currency": currency,
                                "unit_amount": amount_cents,
                                "product_data": {"name": product_name},
                            },
                        }
                    ],
                    "metadata": dict(metadata),
                    "payment_intent_data": {"metadata": dict(metadata)},
                    "client_reference_id": metadata.get("user_id"),
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                },
            ),
            options={"idempotency_key": idempotency_key},
        )
    pi = session.payment_intent
    return CheckoutSession(session.id, session.url, pi if isinstance(pi, str) or pi is None else pi.id)


# --- Connect (creator payouts) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectedAccount:
    """What we keep of a connected account."""

    id: str
    payouts_enabled: bool
    charges_enabled: bool
    details_submitted: bool
    disabled_reason: str | None = None
    currently_due: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Transfer:
    """What we keep of a transfer to a connected account."""

    id: str
    amount: int
    amount_reversed: int
    destination: str | None
    metadata: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    """Stripe refused a Connect request for good: sending the same request again cannot succeed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def create_connected_account(*, user_id: str, email: str | None, idempotency_key: str) -> ConnectedAccount:
    """An Express account that can receive transfers (the creator finishes onboarding on Stripe)."""
    params: dict[str, Any] = {
        "type": "express",
        "capabilities": {"transfers": {"requested": True}},
        "metadata": {"user_id": user_id},
    }
    if email:
        params["email"] = email
    with _stripe_errors():
        account = client().v1.accounts.create(
            params=cast(Any, params), options={"idempotency_key": idempotency_key}
        )
    return account_from(account.to_dict())


def create_account_link(*, account_id: str, refresh_url: str, return_url: str) -> str:
    """A one-time onboarding URL for the account (Stripe's links expire within minutes)."""
    with _stripe_errors():
        link = client().v1.account_links.create(
            params={
                "account": account_id,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "type": "account_onboarding",
            }
        )
    return str(link.url)


def create_transfer(
    *,
    amount_cents: int,
    currency: str,
    destination: str,
    metadata: Mapping[str, str],
    transfer_group: str,
    idempotency_key: str,
) -> Transfer:
    """Move money from the platform balance to a connected account; `Refused` or ServiceUnavailable."""
    params = {
        "amount": amount_cents,
        "currency": currency,
        "destination": destination,
        "metadata": dict(metadata),
        "transfer_group": transfer_group,
    }
    with _connect_errors():
        transfer = client().v1.transfers.create(
            params=cast(Any, params), options={"idempotency_key": idempotency_key}
        )
    return transfer_from(transfer.to_dict())


def find_transfer(transfer_group: str) -> Transfer | None:
    """The transfer made for this group, if any (for retries past Stripe's 24-hour idempotency window)."""
    with _connect_errors():
        found = client().v1.transfers.list(params={"transfer_group": transfer_group, "limit": 1})
    data = found.to_dict().get("data") or []
    return transfer_from(data[0]) if data else None


def reverse_transfer(transfer_id: str, *, idempotency_key: str, metadata: Mapping[str, str]) -> int:
    """Take the rest of a transfer back from the connected account; the cents reversed by this call."""
    with _connect_errors():
        reversal = client().v1.transfers.reversals.create(
            transfer_id, params={"metadata": dict(metadata)}, options={"idempotency_key": idempotency_key}
        )
    return int(reversal.amount)


def account_from(data: Mapping[str, Any]) -> ConnectedAccount:
    """A connected account from its JSON (an API answer or an account.updated event)."""
    requirements = data.get("requirements") or {}
    return ConnectedAccount(
        id=str(data["id"]),
        payouts_enabled=bool(data.get("payouts_enabled")),
        charges_enabled=bool(data.get("charges_enabled")),
        details_submitted=bool(data.get("details_submitted")),
        disabled_reason=requirements.get("disabled_reason"),
        currently_due=[str(x) for x in requirements.get("currently_due") or []],
    )


def transfer_from(data: Mapping[str, Any]) -> Transfer:
    """A transfer from its JSON (an API answer or a transfer.* event)."""
    destination = data.get("destination")
    return Transfer(
        id=str(data["id"]),
        amount=int(data.get("amount") or 0),
        amount_reversed=int(data.get("amount_reversed") or 0),
        destination=destination if isinstance(destination, str) or destination is None else destination["id"],
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
    )


@contextmanager
def _connect_errors() -> Iterator[None]:
    """Refusals (4xx about the request itself) as `Refused`; anything that may pass as ServiceUnavailable."""
    import stripe

    try:
        yield
    except stripe.IdempotencyError as exc:
        # Our keys are derived from our own ids: the same key with other parameters is a bug, never a refusal.
        observability.capture_exception(exc)
        raise ServiceUnavailable("Stripe refused an idempotency key", code="PAYMENTS_UNAVAILABLE") from exc
    except (stripe.InvalidRequestError, stripe.CardError, stripe.PermissionError) as exc:
        raise Refused(str(exc.code or type(exc).__name__), exc.user_message or str(exc)) from exc
    except stripe.AuthenticationError as exc:
        observability.capture_exception(exc)
        raise ServiceUnavailable("Payments are unavailable right now", code="PAYMENTS_UNAVAILABLE") from exc
    except stripe.StripeError as exc:
        log.warning("stripe connect call failed: %s", type(exc).__name__)
        raise ServiceUnavailable("Payments are unavailable right now", code="PAYMENTS_UNAVAILABLE") from exc


# --- webhooks ---------------------------------------------------------------------------------------------


def verify_webhook(payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event in a webhook body signed with STRIPE_WEBHOOK_SECRET or STRIPE_CONNECT_WEBHOOK_SECRET; else 400."""
    import stripe

    s = get_settings()
    secrets = [
        secret.get_secret_value()
        for secret in (s.stripe_webhook_secret, s.stripe_connect_webhook_secret)
        if secret.get_secret_value()
    ]
    if not signature:
        raise BadRequest("Missing Stripe-Signature header", code="INVALID_SIGNATURE")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("Webhook body is not UTF-8", code="INVALID_PAYLOAD") from exc
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, signature, secret, tolerance=WEBHOOK_TOLERANCE_S)
            break
        except stripe.SignatureVerificationError:
            continue
    else:
        raise BadRequest("Invalid Stripe signature", code="INVALID_SIGNATURE")
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise BadRequest("Webhook body is not JSON", code="INVALID_PAYLOAD") from exc
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise BadRequest("Not a Stripe event", code="INVALID_PAYLOAD")
    return event


def _intent(obj: Any) -> Intent:
    data = obj.to_dict()
    return Intent(
        id=data["id"],
        status=data["status"],
        client_secret=data.get("client_secret"),
        amount=int(data.get("amount") or 0),
        currency=str(data.get("currency") or "usd"),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
    )


@contextmanager
def _stripe_errors() -> Iterator[None]:
    """Stripe's errors as our problems: a declined card is 402, a refused request 400, an outage 503."""
    import stripe

    try:
        yield
    except stripe.CardError as exc:
        raise PaymentRequired(
            exc.user_message or "The card was declined",
            code="CARD_DECLINED",
            decline_code=getattr(exc.error, "decline_code", None) if exc.error else None,
        ) from exc
    except stripe.IdempotencyError as exc:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request", code="IDEMPOTENCY_KEY_REUSED"
        ) from exc
    except stripe.InvalidRequestError as exc:
        raise BadRequest(exc.user_message or "Stripe refused the request", code="PAYMENT_REJECTED") from exc
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        observability.capture_exception(exc)
        raise ServiceUnavailable("Payments are unavailable right now", code="PAYMENTS_UNAVAILABLE") from exc
    except stripe.StripeError as exc:
        # Connection errors, rate limits and 5xx, after the SDK's own retries with the same idempotency key.
        log.warning("stripe call failed: %s", type(exc).__name__)
        raise ServiceUnavailable("Payments are unavailable right now", code="PAYMENTS_UNAVAILABLE") from exc
