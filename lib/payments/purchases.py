"""Token purchases: PaymentIntents and Checkout Sessions for packs (settlement turns their state into ledger rows).


Without an Idempotency-Key (the frontend sends none and retries timeouts and 5xx up to three times), the Stripe
idempotency key is derived from what identifies the purchase: user, payment method, pack, gift recipient and a
AUTO_KEY_WINDOW time bucket; a retry that lands in the next bucket still finds the first attempt's key on its
payments row (`purchase_fingerprint`), under an advisory lock that makes it wait for that attempt to finish.
Gifts: `isGift` + `giftRecipientId` charge the buyer and credit the recipient (metadata `user_id` is who is
credited, `buyer_id` who paid), through the same webhook/sync path as any purchase.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from lib import ledger, users
from lib.db import Conn
from lib.errors import NotFound, Unprocessable
from lib.payments import stripe_api
from lib.payments.models import (
    CheckoutRequest,
    CheckoutResult,
    CheckoutSessionResult,
    GiftOut,
    IntentOut,
    PurchaseRequest,
    PurchaseResult,
)
from lib.payments.packages import check_price, package_for
from lib.payments.settlement import CURRENCY, advisory_lock, record_intent, sync_payment
from lib.urls import check_return_urls
from lib.users import User

__all__ = [
    "CheckoutRequest",
    "CheckoutResult",
    "CheckoutSessionResult",
    "PurchaseRequest",
    "PurchaseResult",
    "create_checkout",
    "create_checkout_session",
    "purchase_tokens",
]

# Key-less purchases: retries of one purchase inside this bucket share a Stripe idempotency key (see module doc).
AUTO_KEY_WINDOW = timedelta(minutes=10)
# Key-less checkout sessions: shorter, so a second purchase of the same pack soon after gets a fresh page.
AUTO_CHECKOUT_KEY_WINDOW = timedelta(minutes=2)


def purchase_tokens(
    conn: Conn, user: User, req: PurchaseRequest, *, idempotency_key: str | None
) -> PurchaseResult:
    """Charge a pack with the client's payment method; credit at once if the intent succeeded.

    A gift credits the recipient (never the buyer); `balance` stays the buyer's own.
    """
    pack = package_for(req.token_amount)
    credited = gift_recipient(conn, user, req)
    metadata = {"user_id": str(credited.id), "tokens": str(pack.tokens)}
    if credited.id != user.id:
        metadata.update(buyer_id=str(user.id), gift="true")
    stripe_key, fingerprint = _purchase_key(
        conn,
        "purchase",
        user.id,
        idempotency_key,
        parts=(req.payment_method_id, str(pack.tokens), str(credited.id)),
        window=AUTO_KEY_WINDOW,
        reuse_recorded=True,
    )
    intent = stripe_api.create_purchase_intent(
        amount_cents=pack.priceCents,
        currency=CURRENCY,
        payment_method=req.payment_method_id,
        metadata=metadata,
        idempotency_key=stripe_key,
    )
    record_intent(
        conn,
        user_id=credited.id,
        intent=intent,
        tokens=pack.tokens,
        idempotency_key=idempotency_key,
        buyer_id=user.id if credited.id != user.id else None,
        fingerprint=fingerprint,
        stripe_key=stripe_key,
    )
    if intent.status == "succeeded":
        sync_payment(conn, intent.id, cause="purchase")
    return PurchaseResult(
        success=intent.status == "succeeded",
        payment_intent=IntentOut(id=intent.id, status=intent.status, client_secret=intent.client_secret),
        balance=ledger.balance(conn, user.id),
        tokens=pack.tokens,
        gift=GiftOut(recipientId=credited.id, tokens=pack.tokens) if credited.id != user.id else None,
    )


def gift_recipient(conn: Conn, buyer: User, req: PurchaseRequest) -> User:
    """Who the purchase credits: the buyer, or a gift's recipient; a half-specified gift is refused, never guessed."""
    if not req.is_gift:
        if req.gift_recipient_id is not None:
            raise Unprocessable(
                "giftRecipientId is only used with isGift: true",
                code="GIFT_RECIPIENT_WITHOUT_GIFT",
                errors=[{"field": "isGift", "message": "must be true to gift", "type": "value_error"}],
            )
        return buyer
    if req.gift_recipient_id is None:
        raise Unprocessable(
            "A gift needs giftRecipientId",
            code="GIFT_RECIPIENT_REQUIRED",
            errors=[{"field": "giftRecipientId", "message": "required for a gift", "type": "missing"}],
        )
    if req.gift_recipient_id == buyer.id:
        raise Unprocessable(
            "You cannot gift tokens to yourself",
            code="GIFT_TO_SELF",
            errors=[{"field": "giftRecipientId", "message": "is you", "type": "value_error"}],
        )
    recipient = users.get(conn, req.gift_recipient_id)
    if recipient is None or recipient.role == "system":
        raise NotFound("The gift recipient does not exist", code="GIFT_RECIPIENT_NOT_FOUND")
    return recipient


def create_checkout(
    conn: Conn, user: User, req: CheckoutRequest, *, idempotency_key: str | None
) -> CheckoutResult:
    """A Stripe Checkout Session for a pack (mobile); crediting happens on its payment_intent.succeeded."""
    pack = package_for(req.token_amount)
    check_price(pack, req.amount)
    if req.is_gift:
        raise Unprocessable(
            "Gift purchases go through POST /tokens/purchase",
            code="GIFT_NOT_SUPPORTED",
            errors=[{"field": "isGift", "message": "not supported by checkout", "type": "value_error"}],
        )
    check_return_urls({"successUrl": req.success_url, "cancelUrl": req.cancel_url})
    stripe_key, _ = _purchase_key(
        conn,
        "checkout",
        user.id,
        idempotency_key,
        parts=(str(pack.tokens), req.success_url, req.cancel_url),
        window=AUTO_CHECKOUT_KEY_WINDOW,
        reuse_recorded=False,
    )
    session = stripe_api.create_checkout_session(
        amount_cents=pack.priceCents,
        currency=CURRENCY,
        product_name=f"{pack.tokens} Digis tokens",
        metadata={"user_id": str(user.id), "tokens": str(pack.tokens)},
        success_url=req.success_url,
        cancel_url=req.cancel_url,
        idempotency_key=stripe_key,
    )
    if session.payment_intent:
        conn.execute(
            """INSERT INTO payments (user_id, stripe_payment_intent_id, tokens, amount_cents, currency, status,
                                     stripe_checkout_session_id, idempotency_key)
               VALUES (%(u)s, %(pi)s, %(t)s, %(a)s, %(c)s, 'requires_payment_method', %(s)s, %(k)s)
               ON CONFLICT (stripe_payment_intent_id) DO NOTHING""",
            {
                "u": user.id,
                "pi": session.payment_intent,
                "t": pack.tokens,
                "a": pack.priceCents,
                "c": CURRENCY,
                "s": session.id,
                "k": idempotency_key,
            },
        )
    return CheckoutResult(session_id=session.id, url=session.url, checkout_url=session.url)


def create_checkout_session(
    conn: Conn, user: User, req: CheckoutRequest, *, idempotency_key: str | None
) -> CheckoutSessionResult:
    """The buy sheet's checkout: the same session, with the `data` mirror it reads."""
    out = create_checkout(conn, user, req, idempotency_key=idempotency_key)
    return CheckoutSessionResult(**out.model_dump(), data=out)


def now() -> datetime:
    """The clock the key-less buckets use (tests move it)."""
    return datetime.now(UTC)


def _purchase_key(
    conn: Conn,
    action: str,
    user_id: uuid.UUID,
    client_key: str | None,
    *,
    parts: tuple[str, ...],
    window: timedelta,
    reuse_recorded: bool,
) -> tuple[str, str | None]:
    """Stripe's idempotency key, and the purchase fingerprint when it was derived (no client key).

    With a client key: that key scoped to the user. Without: a hash of what identifies the purchase plus the
    time bucket; with `reuse_recorded`, the key an earlier attempt inside the window recorded (found after
    waiting for that attempt's transaction), so a retry across a bucket edge still charges once.
    """
    if client_key is not None:
        return f"{action}:{user_id}:{client_key}", None
    fingerprint = hashlib.sha256("\x1f".join((action, str(user_id), *parts)).encode()).hexdigest()
    at = now()
    if reuse_recorded:
        advisory_lock(conn, f"purchase:{fingerprint}")
        row = conn.execute(
            """SELECT stripe_idempotency_key FROM payments
               WHERE purchase_fingerprint = %(f)s AND created_at > %(since)s AND stripe_idempotency_key IS NOT NULL
               ORDER BY created_at DESC LIMIT 1""",
            {"f": fingerprint, "since": at - window},
        ).fetchone()
        if row is not None:
            return str(row["stripe_idempotency_key"]), fingerprint
    bucket = int(at.timestamp() // window.total_seconds())
    return f"{action}:{user_id}:auto:{fingerprint[:32]}:{bucket}", fingerprint
