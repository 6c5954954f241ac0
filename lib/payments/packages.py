"""Token packs: API.md's defaults, replaceable with TOKEN_PACKAGES (a JSON list of {tokens, priceCents, ...})."""

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
BASE_CENTS_PER_TOKEN = 10  # the smallest pack's rate; `bonus` is what a pack gives beyond it


class TokenPackage(BaseModel):
    """One pack as the frontend reads it."""

    tokens: int = Field(gt=0)
    priceCents: int = Field(gt=0)
    bonus: int | None = Field(default=None, ge=0)
    popular: bool = False

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
    """The configured packs (TOKEN_PACKAGES when set, else the defaults), cheapest first."""
    raw = get_settings().token_packages
    return list(_parse(raw))


def package_for(tokens: int) -> TokenPackage:
    """The pack of exactly `tokens` tokens, or 422."""
    for pack in token_packages():
        if pack.tokens == tokens:
            return pack
    offered = ", ".join(str(p.tokens) for p in token_packages())
    raise Unprocessable(
        f"tokenAmount must be one of the packs: {offered}",
        code="INVALID_PACKAGE",
        errors=[{"field": "tokenAmount", "message": "not a pack", "type": "value_error"}],
    )


@functools.lru_cache(maxsize=4)
def _parse(raw: str) -> tuple[TokenPackage, ...]:
    if not raw.strip():
        packs = [TokenPackage(tokens=t, priceCents=c) for t, c in DEFAULT_PACKS]
    else:
        packs = TypeAdapter(list[TokenPackage]).validate_json(raw)
    return tuple(sorted(packs, key=lambda p: p.priceCents))
