"""Upstash Redis over REST: one client per process, keys under the configured prefix, a bounded timeout."""

# Callers write so that repeating an operation is harmless (SADD/SREM, SET with EX, HSET of a whole value):
# a retried request must not leave a counter that INCR made drift.

from __future__ import annotations

import logging
import socket

import httpx
from upstash_redis import Redis
from upstash_redis.errors import UpstashError

from lib.config import get_settings, settings_cached

log = logging.getLogger(__name__)

# What a Redis call raises when Upstash is down, slow or refuses: catch these, never bare Exception.
# (ValueError covers a non-JSON reply, e.g. a proxy's HTML error page.)
REDIS_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, UpstashError, ValueError, OSError)


@settings_cached
def get_redis() -> Redis:
    """The process-wide Upstash client, with a real timeout and no retry sleep."""
    settings = get_settings()
    client = Redis(
        url=settings.upstash_redis_rest_url.rstrip("/"),
        token=settings.upstash_redis_rest_token.get_secret_value(),
        rest_retries=0,  # the SDK sleeps 3 s between retries; a request would rather fail over now
        rest_retry_interval=0,
        allow_telemetry=False,
    )
    # The SDK builds httpx.Client(timeout=None): a slow Upstash would hang the function until Vercel kills it.
    client._http._client.close()
    client._http._client = httpx.Client(
        timeout=httpx.Timeout(settings.redis_timeout_s),
        # trust_env=False: proxies come from Settings or nowhere (config is the only reader of the environment).
        trust_env=False,
        transport=httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],  # small requests, no Nagle delay
        ),
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
    )
    # The SDK writes this header on every call; present from the start, concurrent threads never resize the dict.
    client._headers.setdefault("Upstash-Sync-Token", "")
    return client


def key(*parts: object) -> str:
    """A Redis key: `redis_key_prefix` followed by the parts joined with ':'."""
    prefix = get_settings().redis_key_prefix
    body = ":".join(str(p) for p in parts)
    if not prefix:
        return body
    return f"{prefix}{body}" if prefix.endswith(":") else f"{prefix}:{body}"


def ping() -> bool:
    """True when Redis answers PING within the timeout; never raises."""
    try:
        return get_redis().ping() == "PONG"
    except Exception as exc:  # a health check reports, it does not fail the request
        log.warning("redis ping failed: %s: %s", type(exc).__name__, exc)
        return False
