"""Token packs: API.md's defaults, replaceable with TOKEN_PACKAGES (a JSON list of {tokens, priceCents, ...}).

This table is the only authority on what a pack costs: every purchase charges `priceCents` from here, whatever
the client believes. Unlisted packs are sold but not offered by GET /tokens/packages: the defaults keep the
packs the frontend's other screens hard-code (config/wallet-config.js, BuyTokensSheet.jsx) purchasable.
"""

from __future__ import annotations

import functools

from pydantic import BaseModel, Field, TypeAdapter, computed_field

from lib.config import get_settings
from lib.errors import Unprocessable

# API.md: 50 tokens $5.00, 200 $19.00, 433 $39.00, 812 $69.00, 1488 $119.00, 4986 $349.00, 8446 $549.00.
DEFAULT_PACKS: tuple[tuple[int, int], ...] = (
    (50, 500),
    (200, 1900),
    (433, 3900),
    (812, 6900),
    (1488, 11900),
    (4986, 34900),
    (8446, 54900),
)
# Sold, not listed: the frontend's mobile/wallet packs (100 for $10, 500 for $45, 1000 for $80) and the buy sheet's
# 1500 for $99.99 (the sheet also shows 100 and 500, at $9.99 and $39.99: they are charged the table's $10 and $45,
# which Stripe's Checkout page shows before the fan pays).
UNLISTED_DEFAULT_PACKS: tuple[tuple[int, int], ...] = (
    (100, 1000),
    (500, 4500),
    (1000, 8000),
    (1500, 9999),
)
BASE_CENTS_PER_TOKEN = 10  # the smallest pack's rate; `bonus` is what a pack gives beyond it


class TokenPackage(BaseModel):
    """One pack as the frontend reads it."""

    tokens: int = Field(gt=0)
    priceCents: int = Field(gt=0)
    bonus: int | None = Field(default=None, ge=0)
    popular: bool = False
    listed: bool = Field(default=True, exclude=True)  # offered by GET /tokens/packages

    @computed_field  # type: ignore[prop-decorator]
    @property
    def price(self) -> float:
        """USD for display (money itself stays in integer cents)."""
        return round(self.priceCents / 100, 2)

    def model_post_init(self, _context: object) -> None:
        """Default the bonus to the tokens beyond the base rate."""
        if self.bonus is None:
            self.bonus = max(0, self.tokens - self.priceCents // BASE_CENTS_PER_TOKEN)


class PackageList(BaseModel):
    """GET /tokens/packages."""

    packages: list[TokenPackage]


def token_packages() -> list[TokenPackage]:
    """The packs offered (TOKEN_PACKAGES when set, else the defaults), cheapest first."""
    return [p for p in sellable_packages() if p.listed]


def sellable_packages() -> list[TokenPackage]:
    """Every pack that can be bought, listed or not, cheapest first."""
    return list(_parse(get_settings().token_packages))


def package_for(tokens: int, *, field: str = "tokenAmount") -> TokenPackage:
    """The pack of exactly `tokens` tokens, or 422 INVALID_PACKAGE naming `field`."""
    for pack in sellable_packages():
        if pack.tokens == tokens:
            return pack
    offered = ", ".join(str(p.tokens) for p in sellable_packages())
    raise Unprocessable(
        f"{field} must be one of the packs: {offered}",
        code="INVALID_PACKAGE",
        errors=[{"field": field, "message": "not a pack", "type": "value_error"}],
    )


def check_price(pack: TokenPackage, amount_cents: int | None) -> None:
    """422 AMOUNT_MISMATCH when the client names a price (in cents) other than the pack's: nothing is charged."""
    if amount_cents is not None and amount_cents != pack.priceCents:
        raise Unprocessable(
            f"{pack.tokens} tokens cost {pack.priceCents} cents, not {amount_cents}",
            code="AMOUNT_MISMATCH",
            errors=[{"field": "amount", "message": f"must be {pack.priceCents}", "type": "value_error"}],
            expectedAmount=pack.priceCents,
        )


@functools.lru_cache(maxsize=4)
def _parse(raw: str) -> tuple[TokenPackage, ...]:
    if not raw.strip():
        packs = [TokenPackage(tokens=t, priceCents=c) for t, c in DEFAULT_PACKS]
        packs += [TokenPackage(tokens=t, priceCents=c, listed=False) for t, c in UNLISTED_DEFAULT_PACKS]
    else:
        packs = TypeAdapter(list[TokenPackage]).validate_json(raw)
    return tuple(sorted(packs, key=lambda p: p.priceCents))
