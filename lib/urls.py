"""Our URLs: which origins are ours, where Stripe may send a user back, and the canonical form of an API path.

Plain functions over strings and Settings, below `lib.http` (which serves them as CORS and path middleware), so
domains (payments, payouts) and infrastructure (jobs) use them without importing the web layer.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

from lib.config import get_settings, settings_cached
from lib.errors import Unprocessable

_PARAM_SEGMENT = re.compile(r"\[([A-Za-z_][A-Za-z0-9_]*)\]")


def origins_regex(origins: list[str]) -> str:
    """ALLOWED_ORIGINS (with `*` wildcards inside a host label) as one anchored regex."""
    parts = [re.escape(o).replace(r"\*", r"[A-Za-z0-9-]+") for o in origins]
    return "^(?:" + "|".join(parts) + ")$"


@settings_cached
def _origins_pattern() -> re.Pattern[str] | None:
    origins = get_settings().origins
    return re.compile(origins_regex(origins), re.IGNORECASE) if origins else None


def is_allowed_origin(origin: str) -> bool:
    """The one "is this origin ours" check (CORS and Stripe return URLs): on ALLOWED_ORIGINS, exactly or by pattern."""
    pattern = _origins_pattern()
    return pattern is not None and pattern.fullmatch(origin) is not None


def return_url_problem(url: str) -> str | None:
    """Why Stripe may not send a user to `url` (Checkout, Connect onboarding), or None when it is on our frontends."""
    # Backslashes, whitespace and userinfo are where URL parsers disagree about the host: refuse them outright.
    if any(c == "\\" or c.isspace() or not c.isprintable() for c in url):
        return "must be a plain URL"
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return "has an invalid port"
    if parts.scheme not in ("https", "http") or not parts.hostname or "@" in parts.netloc:
        return "must be an http(s) URL"
    origin = f"{parts.scheme}://{parts.hostname}"
    if port is not None and port != {"https": 443, "http": 80}[parts.scheme]:
        origin += f":{port}"
    return (
        None
        if is_allowed_origin(origin)
        else f"must be on one of our frontends (ALLOWED_ORIGINS), not {origin}"
    )


def check_return_urls(urls: dict[str, str]) -> None:
    """422 INVALID_RETURN_URL naming every field whose URL is not on our own frontends (no open redirect)."""
    errors = [
        {"field": field, "message": f"{field} {why}"}
        for field, url in urls.items()
        if (why := return_url_problem(url))
    ]
    if errors:
        raise Unprocessable("; ".join(e["message"] for e in errors), code="INVALID_RETURN_URL", errors=errors)


def canonical_path(path: str, query: bytes) -> str:
    """Map `/api/v1/...` and Vercel's `/api/x/[id]/y?id=...` destination form onto `/api/x/<id>/y`."""
    if path == "/api/v1" or path.startswith("/api/v1/"):
        path = "/api" + path[len("/api/v1") :]
    if "[" in path or "%5B" in path.upper():
        decoded = unquote(path)
        params = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
        path = _PARAM_SEGMENT.sub(lambda m: params.get(m.group(1), m.group(0)), decoded)
    return path
