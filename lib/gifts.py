"""Virtual gifts: the catalog, one table in code and the only source of a gift's price (sent as tips, lib/tips)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from lib.errors import Unprocessable

Rarity = Literal["common", "rare", "epic", "legendary", "mythic"]


class Gift(BaseModel):
    """One gift as GET /tokens/catalog lists it (VirtualGifts.js reads id, name, emoji, cost, rarity)."""

    id: str
    name: str
    emoji: str
    cost: int  # tokens per gift
    rarity: Rarity


# The frontend's own fallback catalog (VirtualGifts.js), so a client showing it sends ids we know.
_ROWS: tuple[tuple[str, str, str, int, Rarity], ...] = (
    ("heart", "Heart", "❤️", 5, "common"),
    ("thumbs-up", "Thumbs Up", "👍", 10, "common"),
    ("clap", "Clap", "👏", 15, "common"),
    ("fire", "Fire", "🔥", 20, "common"),
    ("star", "Star", "⭐", 25, "common"),
    ("cake", "Cake", "🎂", 30, "common"),
    ("diamond", "Diamond", "💎", 50, "rare"),
    ("ring", "Ring", "💍", 75, "rare"),
    ("crown", "Crown", "👑", 100, "rare"),
    ("gold-bar", "Gold Bar", "🥇", 150, "rare"),
    ("trophy", "Trophy", "🏆", 200, "epic"),
    ("rocket", "Rocket", "🚀", 250, "epic"),
    ("champagne", "Champagne", "🍾", 300, "legendary"),
    ("sports-car", "Sports Car", "🏎️", 500, "legendary"),
    ("yacht", "Yacht", "🛥️", 750, "legendary"),
    ("mansion", "Mansion", "🏰", 1000, "mythic"),
    ("private-jet", "Private Jet", "✈️", 1500, "mythic"),
    ("island", "Private Island", "🏝️", 2500, "mythic"),
)
CATALOG: tuple[Gift, ...] = tuple(Gift(id=i, name=n, emoji=e, cost=c, rarity=r) for i, n, e, c, r in _ROWS)
_BY_ID = {gift.id: gift for gift in CATALOG}


def gifts() -> list[Gift]:
    """The catalog, cheapest first."""
    return list(CATALOG)


def gift(gift_id: str) -> Gift:
    """The gift with this id, or 422 naming `giftType`."""
    found = _BY_ID.get(gift_id)
    if found is None:
        raise Unprocessable(
            f"Unknown gift type {gift_id!r}",
            code="VALIDATION_ERROR",
            errors=[{"field": "giftType", "message": "unknown gift type", "type": "value_error"}],
        )
    return found
