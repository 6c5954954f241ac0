"""Tips and gifts: request bodies (as the frontend sends them) and answers (with the fields it reads)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, model_validator

from lib.gifts import Gift

MAX_TIP = 100_000  # tokens in one tip or one gift request (the tips_amount_range constraint)
MAX_GIFT_QUANTITY = 100


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


# A stream named by id or Agora channel, and an optional message; "" counts as absent (the pages send it).
StreamRef = Annotated[str, Field(min_length=1, max_length=200)]
OptionalRef = Annotated[StreamRef | None, BeforeValidator(_blank_to_none)]
Message = Annotated[Annotated[str, Field(max_length=500)] | None, BeforeValidator(_blank_to_none)]


class TipContext(BaseModel):
    """Where the tip was sent from: a live stream named by its id or its Agora channel (either key may hold either)."""

    streamId: OptionalRef = None
    channel: OptionalRef = None

    @property
    def ref(self) -> str | None:
        """What names the stream: the streamId (a UUID or a channel) else the channel."""
        return self.streamId or self.channel


def _same(data: Any, *keys: str) -> Any:
    """Refuse a body that names two different values for one field under its two accepted keys."""
    if isinstance(data, dict):
        present = [data[k] for k in keys if data.get(k) is not None]
        if len(present) == 2 and present[0] != present[1]:
            raise ValueError(f"{keys[0]} and {keys[1]} name different values")
    return data


class TipRequest(BaseModel):
    """POST /tips/send: `{toCreatorId, amountTokens}` (TipButton, VirtualGifts) or `{recipientId, tokens}`
    (TokenTipping); amounts are JSON integers; unknown keys (`tierType`, `context.type`) are ignored."""

    model_config = ConfigDict(populate_by_name=True)

    to_creator_id: uuid.UUID = Field(validation_alias=AliasChoices("toCreatorId", "recipientId"))
    amount_tokens: StrictInt = Field(
        validation_alias=AliasChoices("amountTokens", "tokens"), ge=1, le=MAX_TIP
    )
    message: Message = None
    context: TipContext | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_value_per_field(cls, data: Any) -> Any:
        return _same(_same(data, "toCreatorId", "recipientId"), "amountTokens", "tokens")


class GiftRequest(BaseModel):
    """POST /stream-features/gift (VirtualGifts.js): the price comes from the catalog, never from the body."""

    channel: StreamRef
    creatorId: uuid.UUID | None = None  # absent when the page has no creator object: the stream's creator
    giftType: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: StrictInt = Field(default=1, ge=1, le=MAX_GIFT_QUANTITY)
    message: Message = None


class TipOut(BaseModel):
    """What a tip did: `new_balance` is the sender's balance now; `streamId` the live stream it counted in."""

    tipId: uuid.UUID
    amountTokens: int
    new_balance: int
    creatorCut: int
    platformFee: int
    streamId: uuid.UUID | None
    replayed: bool = Field(
        description="true when this repeats an identical tip sent seconds ago (no new debit)"
    )


class TipResult(TipOut):
    """POST /tips/send; `data` mirrors the fields for callers that read `response.data` (TipButton.jsx)."""

    success: Literal[True] = True
    data: TipOut


class GiftResult(TipOut):
    """POST /stream-features/gift: the tip the gift became, priced from the catalog."""

    success: Literal[True] = True
    giftId: uuid.UUID
    giftType: str
    quantity: int
    unitCost: int
    totalCost: int
    gift: Gift


Period = Literal["today", "week", "month", "all"]


class TopTipper(BaseModel):
    """One supporter on the leaderboard (TipLeaderboard.jsx)."""

    id: uuid.UUID
    username: str
    display_name: str | None
    profile_pic_url: str | None
    total_amount: int
    tip_count: int
    rank: int


class TipStats(BaseModel):
    """GET /tips/stats/{creatorId}?period=."""

    creatorId: uuid.UUID
    period: Period
    since: datetime | None = Field(description="start of the window, null for all")
    total_amount: int
    tip_count: int
    top_tippers: list[TopTipper]
