"""GET /api/tokens/packages: the token packs on sale (public)."""

from lib.http import EdgeCache, create_app
from lib.payments import packages

app = create_app(edge_cache=EdgeCache(s_maxage=300, stale_while_revalidate=3600))


@app.get("/api/tokens/packages", response_model=packages.PackageList)
def list_packages() -> packages.PackageList:
    """The packs, cheapest first."""
    return packages.PackageList(packages=packages.token_packages())
