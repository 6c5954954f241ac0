"""GET /api/tokens/catalog: the virtual gifts on sale and their token prices (public)."""

from lib import gifts
from lib.http import EdgeCache, create_app

app = create_app(edge_cache=EdgeCache(s_maxage=300, stale_while_revalidate=3600))


@app.get("/api/tokens/catalog")
def gift_catalog() -> list[gifts.Gift]:
    """A bare array [{id, name, emoji, cost, rarity}], cheapest first (VirtualGifts.js groups it by rarity)."""
    return gifts.gifts()
