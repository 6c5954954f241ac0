"""Settings: the only place that reads the environment."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DEV_SECRET = "dev-only-secret-change-me-000000000000"  # noqa: S105 - refused outside development/test

# Secrets every deployment must set; outside development/test a missing or placeholder value is refused.
_REQUIRED_IN_PRODUCTION = (
    "supabase_jwt_secret",
    "supabase_service_role_key",
    "upstash_redis_rest_token",
    "qstash_token",
    "qstash_current_signing_key",
    "qstash_next_signing_key",
    "pusher_secret",
    "stripe_secret_key",
    "stripe_webhook_secret",
    "agora_app_certificate",
    "cron_secret",
)


# Hosts where anyone can get a subdomain: `*.vercel.app` would let a stranger's site in. A wildcard over one of them
# must name the project and the team (`<project>-*-<team-slug>.vercel.app`, Vercel's preview URL shape).
SHARED_HOSTING_SUFFIXES = frozenset(
    {
        "vercel.app",
        "now.sh",
        "netlify.app",
        "netlify.com",
        "github.io",
        "gitlab.io",
        "pages.dev",
        "workers.dev",
        "herokuapp.com",
        "web.app",
        "firebaseapp.com",
        "onrender.com",
        "fly.dev",
        "railway.app",
        "up.railway.app",
        "azurewebsites.net",
        "azurestaticapps.net",
        "cloudfront.net",
        "amplifyapp.com",
        "surge.sh",
        "glitch.me",
        "ngrok.io",
        "ngrok-free.app",
        "trycloudflare.com",
    }
)
_ORIGIN_ENTRY = re.compile(r"^(https?)://([a-z0-9*.-]+)(?::([0-9]{1,5}))?$")
_HOST_LABEL = re.compile(r"^[a-z0-9*]([a-z0-9*-]*[a-z0-9*])?$")
_PROJECT_SCOPED_LABEL = re.compile(r"^[a-z0-9][a-z0-9-]*-\*-[a-z0-9][a-z0-9-]*$")
_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "gov", "edu", "ac", "ne", "or"})


def origin_entry_problem(entry: str) -> str | None:
    """Why an ALLOWED_ORIGINS entry is refused (not `scheme://host[:port]`, or a wildcard strangers can match)."""
    m = _ORIGIN_ENTRY.match(entry)
    labels = m.group(2).split(".") if m else []
    if m is None or not all(_HOST_LABEL.match(label) for label in labels):
        return f"{entry!r} is not an origin (scheme://host[:port], no path)"
    if "*" not in entry:
        return None
    wild, rest = labels[0], labels[1:]
    if entry.count("*") > 1 or "*" in ".".join(rest):
        return f"{entry!r}: one `*`, in the first host label only"
    suffix = ".".join(rest)
    public = len(rest) == 1 or (len(rest) == 2 and rest[0] in _SECOND_LEVEL and len(rest[1]) == 2)
    if not rest or public:
        return f"{entry!r}: a wildcard directly under a public suffix matches anyone's domain"
    if suffix in SHARED_HOSTING_SUFFIXES and not _PROJECT_SCOPED_LABEL.match(wild):
        return (
            f"{entry!r} admits anyone's site on {suffix}; scope it to your project and team, "
            f"e.g. https://<project>-*-<team-slug>.{suffix}"
        )
    return None


class Settings(BaseSettings):
    """Every setting the functions read, typed; env names are the field names upper-cased."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    environment: Literal["development", "test", "production", "preview"] = "production"
    app_version: str = "0.1.0"

    database_url: str = "postgresql://postgres@127.0.0.1:5432/digis"
    db_pool_min: int = Field(default=0, ge=0)
    db_pool_max: int = Field(default=4, ge=1)
    db_connect_timeout_s: int = Field(default=3, ge=1)
    db_pool_timeout_s: float = Field(default=3.0, gt=0)
    db_statement_timeout_ms: int = Field(default=5000, ge=100)

    supabase_url: str = ""
    supabase_jwt_secret: SecretStr = SecretStr(_DEV_SECRET)
    supabase_service_role_key: SecretStr = SecretStr(_DEV_SECRET)
    supabase_timeout_s: float = 3.0

    upstash_redis_rest_url: str = "http://127.0.0.1:8079"
    upstash_redis_rest_token: SecretStr = SecretStr(_DEV_SECRET)
    redis_timeout_s: float = Field(default=0.5, gt=0)
    redis_key_prefix: str = ""

    qstash_url: str = "https://qstash.upstash.io"
    qstash_token: SecretStr = SecretStr(_DEV_SECRET)
    qstash_current_signing_key: SecretStr = SecretStr(_DEV_SECRET)
    qstash_next_signing_key: SecretStr = SecretStr(_DEV_SECRET)
    qstash_timeout_s: float = 3.0
    public_base_url: str = "http://127.0.0.1:3000"

    pusher_app_id: str = "1000001"
    pusher_key: str = "digis-local-key"
    pusher_secret: SecretStr = SecretStr(_DEV_SECRET)
    pusher_cluster: str = "mt1"
    pusher_host: str = ""
    pusher_port: int | None = None
    pusher_use_tls: bool = True
    pusher_timeout_s: float = Field(default=1.0, gt=0)

    stripe_secret_key: SecretStr = SecretStr(_DEV_SECRET)
    stripe_webhook_secret: SecretStr = SecretStr(_DEV_SECRET)
    stripe_connect_webhook_secret: SecretStr = SecretStr("")
    stripe_api_base: str = ""
    stripe_timeout_s: float = 10.0

    agora_app_id: str = ""
    agora_app_certificate: SecretStr = SecretStr(_DEV_SECRET)
    agora_customer_id: str = ""
    agora_customer_secret: SecretStr = SecretStr("")
    agora_rest_base: str = "https://api.agora.io"
    agora_timeout_s: float = 2.0
    agora_ncs_secret: SecretStr = SecretStr("")  # Agora Notifications (channel events) signing secret

    sentry_dsn: str = ""
    cron_secret: SecretStr = SecretStr(_DEV_SECRET)
    allowed_origins: str = ""
    max_body_bytes: int = 1_048_576

    token_packages: str = ""  # JSON list of {tokens, priceCents, bonus?, popular?}; empty = API.md's packs
    platform_fee_percent: Decimal = Field(default=Decimal(0), ge=0, le=100)
    token_usd_value: Decimal = Field(default=Decimal("0.05"), gt=0)
    call_heartbeat_timeout_s: int = Field(default=45, ge=5)
    payout_reserve_days: int = Field(default=7, ge=0)
    payout_minimum_tokens: int = Field(default=500, ge=1)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment in ("development", "test"):
            return self
        missing = [
            name.upper()
            for name in _REQUIRED_IN_PRODUCTION
            if getattr(self, name).get_secret_value() in ("", _DEV_SECRET)
        ]
        if missing:
            raise ValueError(f"set these environment variables for {self.environment}: {', '.join(missing)}")
        return self

    @model_validator(mode="after")
    def _refuse_open_origins(self) -> Settings:
        refused = [problem for entry in self.origins if (problem := origin_entry_problem(entry))]
        if refused:
            raise ValueError("ALLOWED_ORIGINS: " + "; ".join(refused))
        return self

    @property
    def origins(self) -> list[str]:
        """ALLOWED_ORIGINS as a list (lower-cased, no trailing slash)."""
        return [o.strip().rstrip("/").lower() for o in self.allowed_origins.split(",") if o.strip()]

    @property
    def is_local(self) -> bool:
        """True in development and test."""
        return self.environment in ("development", "test")


_F = TypeVar("_F", bound=Callable[..., Any])
_caches: list[Any] = []
_reset_hooks: list[Callable[[], None]] = []


def settings_cached(fn: _F) -> _F:
    """lru_cache for things built from settings; `reset()` clears every one of them."""
    cached = functools.lru_cache(maxsize=None)(fn)
    _caches.append(cached)
    return cached  # type: ignore[return-value]


@settings_cached
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def on_reset(hook: Callable[[], None]) -> None:
    """Run `hook` (e.g. close a pool) before `reset()` forgets the cached clients."""
    _reset_hooks.append(hook)


def reset() -> None:
    """Forget settings and every client built from them (tests repointing a setting use this)."""
    for hook in _reset_hooks:
        hook()
    for cache in _caches:
        cache.cache_clear()
