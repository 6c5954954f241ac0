"""Token purchases: PaymentIntents for packs, and the one function that turns a payment's state into ledger rows.

A payment's tokens reach the ledger only through `sync_payment`, which computes what the payment should give the
user now (`tokens` once the intent succeeded, less refunded and disputed tokens) and moves `tokens_applied`
there with one credit or clawback (`clawbacks`: who gives back what, the creators the tokens were spent on
included). Whatever order or however often Stripe's events (or the purchase route) call it, the user ends up
credited once per intent.

Rounding: a partial refund or dispute of `c` cents takes back ceil(tokens * c / amount_cents) tokens.

Without an Idempotency-Key (the frontend sends none and retries timeouts and 5xx up to three times), the Stripe
idempotency key is derived from what identifies the purchase: user, payment method, pack, gift recipient and a
AUTO_KEY_WINDOW time bucket; a retry that lands in the next bucket still finds the first attempt's key on its
payments row (`purchase_fingerprint`), under an advisory lock that makes it wait for that attempt to finish.
Gifts: `isGift` + `giftRecipientId` charge the buyer and credit the recipient (metadata `user_id` is who is
credited, `buyer_id` who paid), through the same webhook/sync path as any purchase.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from lib import ledger, observability, realtime, users
from lib.db import Conn
from lib.errors import NotFound, Unprocessable
from lib.payments import clawbacks, stripe_api
from lib.payments.packages import check_price, package_for
from lib.urls import check_return_urls
from lib.users import User

log = logging.getLogger("digis.payments")

CURRENCY = "usd"
# Disputes in these states no longer hold tokens back (decided in our favour, or an inquiry closed).
DISPUTE_RELEASED = frozenset({"won", "warning_closed"})
SyncCause = Literal["purchase", "refund", "dispute", "dispute_closed"]
# Key-less purchases: retries of one purchase inside this bucket share a Stripe idempotency key (see module doc).
AUTO_KEY_WINDOW = timedelta(minutes=10)
# Key-less checkout sessions: shorter, so a second purchase of the same pack soon after gets a fresh page.
AUTO_CHECKOUT_KEY_WINDOW = timedelta(minutes=2)


class PurchaseRequest(BaseModel):
    """POST /tokens/purchase."""

    model_config = ConfigDict(populate_by_name=True)

    token_amount: StrictInt = Field(alias="tokenAmount", gt=0)
    payment_method_id: Annotated[StrictStr, Field(alias="paymentMethodId", min_length=3, max_length=255)]
    is_gift: StrictBool = Field(default=False, alias="isGift")
    gift_recipient_id: uuid.UUID | None = Field(default=None, alias="giftRecipientId")


class GiftOut(BaseModel):
    """Who a gift purchase credits (the buyer's own balance does not change)."""

    recipientId: uuid.UUID
    tokens: int


class IntentOut(BaseModel):
    """The PaymentIntent fields the client needs to finish 3-D Secure."""

    id: str
    status: str
    client_secret: str | None


class PurchaseResult(BaseModel):
    """POST /tokens/purchase response: success only when the intent succeeded."""

    model_config = ConfigDict(populate_by_name=True)

    success: bool
    payment_intent: IntentOut = Field(serialization_alias="paymentIntent")
    balance: int
    tokens: int
    gift: GiftOut | None = None


_TOKEN_KEYS = ("tokenAmount", "token_amount", "tokens")


class CheckoutRequest(BaseModel):
    """POST /payments/create-checkout (and -session): camelCase, or the mobile page's {tokens, amount, snake_urls}."""

    token_amount: StrictInt = Field(validation_alias=AliasChoices(*_TOKEN_KEYS), gt=0)
    amount: StrictInt | None = Field(
        default=None, ge=0
    )  # cents the client expects to pay; must match the pack
    price_id: str | None = Field(
        default=None, validation_alias=AliasChoices("priceId", "price_id"), max_length=255
    )  # the buy sheet's placeholder Stripe price: the pack (by tokens) decides the price, never this
    success_url: str = Field(validation_alias=AliasChoices("successUrl", "success_url"), max_length=2000)
    cancel_url: str = Field(validation_alias=AliasChoices("cancelUrl", "cancel_url"), max_length=2000)
    is_gift: StrictBool = Field(default=False, validation_alias=AliasChoices("isGift", "is_gift"))

    @model_validator(mode="before")
    @classmethod
    def _one_token_amount(cls, data: Any) -> Any:
        """Two spellings of the amount that disagree are refused (which one would we sell?)."""
        if isinstance(data, dict):
            given = {repr(data[k]) for k in _TOKEN_KEYS if k in data}
            if len(given) > 1:
                raise ValueError("tokenAmount, token_amount and tokens disagree")
        return data


class CheckoutResult(BaseModel):
    """POST /payments/create-checkout response (`checkoutUrl` is the mobile page's name for `url`)."""

    model_config = ConfigDict(populate_by_name=True)

    session_id: str = Field(serialization_alias="sessionId")
    url: str | None
    checkout_url: str | None = Field(default=None, serialization_alias="checkoutUrl")


class CheckoutSessionResult(CheckoutResult):
    """POST /payments/create-checkout-session response: the buy sheet reads `response.data.url`."""

    data: CheckoutResult


@dataclass(frozen=True)
class SyncResult:
    """What `sync_payment` changed: tokens moved (signed) and the user's balance after."""

    user_id: uuid.UUID
    delta: int
    balance_after: int


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


def record_intent(
    conn: Conn,
    *,
    user_id: uuid.UUID,
    intent: stripe_api.Intent,
    tokens: int,
    idempotency_key: str | None = None,
    buyer_id: uuid.UUID | None = None,
    fingerprint: str | None = None,
    stripe_key: str | None = None,
) -> None:
    """Create or update the payments row for an intent (a succeeded status is never overwritten)."""
    _lock_intent(conn, intent.id)
    conn.execute(
        """INSERT INTO payments (user_id, stripe_payment_intent_id, tokens, amount_cents, currency, status,
                                 idempotency_key, buyer_id, purchase_fingerprint, stripe_idempotency_key)
           VALUES (%(u)s, %(pi)s, %(t)s, %(a)s, %(c)s, %(s)s, %(k)s, %(b)s, %(fp)s, %(sk)s)
           ON CONFLICT (stripe_payment_intent_id) DO UPDATE
           SET status = CASE WHEN payments.status = 'succeeded' THEN payments.status ELSE EXCLUDED.status END,
               buyer_id = coalesce(payments.buyer_id, EXCLUDED.buyer_id),
               purchase_fingerprint = coalesce(payments.purchase_fingerprint, EXCLUDED.purchase_fingerprint),
               stripe_idempotency_key = coalesce(payments.stripe_idempotency_key, EXCLUDED.stripe_idempotency_key),
               updated_at = now()""",
        {
            "u": user_id,
            "pi": intent.id,
            "t": tokens,
            "a": intent.amount,
            "c": intent.currency,
            "s": intent.status,
            "k": idempotency_key,
            "b": buyer_id,
            "fp": fingerprint,
            "sk": stripe_key,
        },
    )


def set_intent_status(conn: Conn, intent_id: str, status: str) -> None:
    """Record a non-final status change (failed, canceled, processing); never downgrades a success."""
    _lock_intent(conn, intent_id)
    conn.execute(
        """UPDATE payments SET status = %(s)s, updated_at = now()
           WHERE stripe_payment_intent_id = %(pi)s AND status <> 'succeeded'""",
        {"s": status, "pi": intent_id},
    )


def record_refund(
    conn: Conn, *, charge_id: str, intent_id: str, amount_cents: int, refunded_cents: int
) -> None:
    """Record a charge's cumulative refunded amount (only ever grows, whatever order events arrive in)."""
    _lock_intent(conn, intent_id)
    conn.execute(
        """INSERT INTO payment_refunds (stripe_charge_id, stripe_payment_intent_id, amount_cents,
                                        amount_refunded_cents)
           VALUES (%(ch)s, %(pi)s, %(a)s, %(r)s)
           ON CONFLICT (stripe_charge_id) DO UPDATE
           SET amount_refunded_cents = greatest(payment_refunds.amount_refunded_cents, EXCLUDED.amount_refunded_cents),
               updated_at = now()""",
        {"ch": charge_id, "pi": intent_id, "a": amount_cents, "r": refunded_cents},
    )


def record_dispute(
    conn: Conn,
    *,
    dispute_id: str,
    intent_id: str,
    charge_id: str | None,
    amount_cents: int,
    status: str,
    closed: bool,
) -> None:
    """Record a dispute's state; once closed it stays closed (a late `created` event cannot reopen it)."""
    _lock_intent(conn, intent_id)
    conn.execute(
        """INSERT INTO payment_disputes (stripe_dispute_id, stripe_payment_intent_id, stripe_charge_id,
                                         amount_cents, status, closed)
           VALUES (%(d)s, %(pi)s, %(ch)s, %(a)s, %(s)s, %(c)s)
           ON CONFLICT (stripe_dispute_id) DO UPDATE
           SET status = CASE WHEN payment_disputes.closed THEN payment_disputes.status ELSE EXCLUDED.status END,
               closed = payment_disputes.closed OR EXCLUDED.closed,
               amount_cents = CASE WHEN payment_disputes.closed THEN payment_disputes.amount_cents
                                   ELSE EXCLUDED.amount_cents END,
               updated_at = now()""",
        {"d": dispute_id, "pi": intent_id, "ch": charge_id, "a": amount_cents, "s": status, "c": closed},
    )


def tokens_for_cents(tokens: int, amount_cents: int, cents: int) -> int:
    """Tokens a refund or dispute of `cents` takes back: ceil(tokens * cents / amount_cents), at most `tokens`."""
    if cents <= 0:
        return 0
    if amount_cents <= 0 or cents >= amount_cents:
        return tokens
    return min(tokens, -(-tokens * cents // amount_cents))


def sync_payment(
    conn: Conn, intent_id: str, *, cause: SyncCause, event_id: str | None = None
) -> SyncResult | None:
    """Move the ledger to what this payment should give the user now; None when nothing changed."""
    _lock_intent(conn, intent_id)
    pay = conn.execute(
        """SELECT id, user_id, tokens, amount_cents, status, tokens_applied, sync_version
           FROM payments WHERE stripe_payment_intent_id = %(pi)s""",
        {"pi": intent_id},
    ).fetchone()
    if pay is None:
        return None  # facts are kept; the payment's own event will sync them
    facts = conn.execute(
        """SELECT (SELECT coalesce(sum(amount_refunded_cents), 0) FROM payment_refunds
                    WHERE stripe_payment_intent_id = %(pi)s) AS refunded,
                  (SELECT coalesce(array_agg(amount_cents), '{}') FROM payment_disputes
                    WHERE stripe_payment_intent_id = %(pi)s AND NOT (closed AND status = ANY(%(released)s)))
                      AS disputes""",
        {"pi": intent_id, "released": sorted(DISPUTE_RELEASED)},
    ).fetchone()
    assert facts is not None
    tokens, amount = int(pay["tokens"]), int(pay["amount_cents"])
    target = 0
    if pay["status"] == "succeeded":
        held = tokens_for_cents(tokens, amount, int(facts["refunded"]))
        held += sum(tokens_for_cents(tokens, amount, int(c)) for c in facts["disputes"])
        target = max(0, tokens - held)
    delta = target - int(pay["tokens_applied"])
    if delta == 0:
        return None
    purchase = clawbacks.Purchase(pay["id"], pay["user_id"], intent_id, int(pay["sync_version"]) + 1)
    metadata = {"stripe_event": event_id, "payment_id": str(pay["id"])}
    if delta > 0:
        kind = "dispute_reversal" if cause == "dispute_closed" else "purchase"
        moved = clawbacks.give_back(conn, purchase, delta, kind=kind, metadata=metadata)
    else:
        kind = "dispute" if cause.startswith("dispute") else "refund"
        moved = clawbacks.take_back(conn, purchase, -delta, kind=kind, metadata=metadata)
    conn.execute(
        """UPDATE payments SET tokens_applied = %(t)s, sync_version = %(v)s, updated_at = now()
           WHERE stripe_payment_intent_id = %(pi)s""",
        {"t": target, "v": purchase.version, "pi": intent_id},
    )
    _announce(conn, purchase, moved, kind)
    return SyncResult(pay["user_id"], delta, moved.fan_balance)


def _announce(conn: Conn, purchase: clawbacks.Purchase, moved: clawbacks.Moved, kind: str) -> None:
    """balance:update for everyone the change touched; Sentry hears of every new debt."""
    if moved.fan is not None:
        fan = moved.fan
        realtime.publish_balance(
            conn, purchase.user_id, balance=fan.balance_after, delta=fan.balance_change, reason=kind
        )
    debts = [(purchase.user_id, moved.fan)] if moved.fan is not None else []
    for user_id, entry in moved.others:
        debts.append((user_id, entry))
        if user_id != ledger.PLATFORM_USER_ID:
            realtime.publish_balance(
                conn, user_id, balance=entry.balance_after, delta=entry.balance_change, reason=entry.kind
            )
    for user_id, entry in debts:
        if entry.debt_change > 0:
            observability.capture_message(
                "token clawback left a debt",
                user_id=str(user_id),
                intent=purchase.intent_id,
                kind=entry.kind,
                debt=entry.debt_after,
            )


def _lock_intent(conn: Conn, intent_id: str) -> None:
    """Serialise everything that touches one intent, always before its rows (so two events cannot deadlock)."""
    _advisory_lock(conn, f"payment:{intent_id}")


def _advisory_lock(conn: Conn, name: str) -> None:
    digest = hashlib.sha256(name.encode()).digest()
    conn.execute(
        "SELECT pg_advisory_xact_lock(%(k)s::bigint)", {"k": int.from_bytes(digest[:8], "big", signed=True)}
    )


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
        _advisory_lock(conn, f"purchase:{fingerprint}")
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
