"""Request and response shapes of token purchases and checkouts."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

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
