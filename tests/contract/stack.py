"""The local stack a contract run talks to: the Vercel router on a free port, the stand-ins, real users' tokens."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from schemathesis.core import NotSet

from lib import config, db, redis
from localdev import qstash_server, stripe_connect_standin, stripe_standin, supabase_standin, vercel_router

REDIS_URL = os.environ.get("DIGIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")  # as tests/conftest.py
USER_BALANCE = 1_000_000
TOKEN_TTL_S = 6 * 3600  # a long fuzz run must not see its token expire


PLACEHOLDER = "contract-credentials-for-"
SCHEME_HEADERS = {
    "supabaseJwt": "Authorization",
    "cronSecret": "Authorization",
    "qstashSignature": "Upstash-Signature",
}


def placeholders(schemes: list[str]) -> dict[str, str]:
    """A stand-in credential per scheme (the real one exists only once the stack runs)."""
    headers: dict[str, str] = {}
    for scheme in schemes:
        header = SCHEME_HEADERS.get(scheme)
        if header is not None:
            headers.setdefault(header, f"{PLACEHOLDER}{scheme}")
    return headers


@dataclass(frozen=True)
class Stack:
    """Where the API answers and the credentials each security scheme takes."""

    url: str
    cron_secret: str
    qstash_signing_key: str
    sign_token: Callable[[dict[str, Any]], str]
    issuer: str

    def token_for(self, user_id: uuid.UUID, email: str) -> str:
        """A Supabase access token for the user (ES256, from the stand-in's JWKS key)."""
        now = int(time.time())
        claims = {"sub": str(user_id), "email": email, "aud": "authenticated", "role": "authenticated"}
        return self.sign_token({**claims, "iss": self.issuer, "iat": now, "exp": now + TOKEN_TTL_S})

    def credentials(self, schemes: list[str], user_token: str, *, url: str, body: bytes) -> dict[str, str]:
        """The headers these security schemes take for a request of `body` to `url` (QStash signs both)."""
        headers: dict[str, str] = {}
        for scheme in schemes:
            if scheme == "supabaseJwt":
                headers.setdefault("Authorization", f"Bearer {user_token}")
            elif scheme == "cronSecret":
                headers.setdefault("Authorization", f"Bearer {self.cron_secret}")
            elif scheme == "qstashSignature":
                headers["Upstash-Signature"] = qstash_server.sign(self.qstash_signing_key, url=url, body=body)
                headers["Upstash-Message-Id"] = f"msg_contract_{uuid.uuid4().hex}"
                headers["Upstash-Retried"] = "0"
        return headers

    def authorize(self, case: Any, user_token: str) -> None:
        """Swap each placeholder credential on a schemathesis case for the real one, just before the call."""
        headers = case.headers if isinstance(case.headers, dict) else {}
        schemes = [
            value.removeprefix(PLACEHOLDER)
            for value in headers.values()
            if isinstance(value, str) and value.startswith(PLACEHOLDER)
        ]
        if not schemes:
            return
        raw = b""
        if "qstashSignature" in schemes and not isinstance(case.body, NotSet):
            # QStash signs the exact body bytes: send the body as those bytes (schemathesis sends bytes as is).
            raw = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
            case.body = raw
        url = self.url + case.formatted_path
        if case.query:
            url += "?" + urlencode(case.query, doseq=True)
        for header, value in list(headers.items()):
            if isinstance(value, str) and value.startswith(PLACEHOLDER):
                del headers[header]
        headers.update(self.credentials(schemes, user_token, url=url, body=raw))


def schemes_of(operation: dict[str, Any]) -> list[str]:
    """The security schemes an OpenAPI operation lists, sorted."""
    return sorted({name for requirement in operation.get("security", []) for name in requirement})


@contextlib.contextmanager
def patched_env(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables (and drop cached settings) for the block; restore both after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    config.reset()
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        config.reset()


@contextlib.contextmanager
def running() -> Iterator[Stack]:
    """Supabase, Stripe and QStash stand-ins, then the router serving every api/ function over real HTTP."""
    settings = config.get_settings()
    with contextlib.ExitStack() as stack:
        supabase = stack.enter_context(
            supabase_standin.running(service_role_key=settings.supabase_service_role_key.get_secret_value())
        )
        localstripe = stack.enter_context(stripe_standin.running())
        # Connect and Checkout live in the Connect stand-in, in front of localstripe, as scripts/dev runs them.
        stripe = stack.enter_context(
            stripe_connect_standin.running(
                secret_key=settings.stripe_secret_key.get_secret_value(), upstream=localstripe.url
            )
        )
        qstash = stack.enter_context(
            qstash_server.running(
                token=settings.qstash_token.get_secret_value(),
                current_signing_key=settings.qstash_current_signing_key.get_secret_value(),
                next_signing_key=settings.qstash_next_signing_key.get_secret_value(),
            )
        )
        cron_secret = settings.cron_secret.get_secret_value()
        router = stack.enter_context(vercel_router.running(cron_secret=cron_secret, fire_crons=False))
        stack.enter_context(
            patched_env(
                {
                    "SUPABASE_URL": supabase.url,
                    "STRIPE_API_BASE": stripe.url,
                    "QSTASH_URL": qstash.url,
                    # Job callbacks come back to this router, never to whatever listens on :3000.
                    "PUBLIC_BASE_URL": router.url,
                }
            )
        )
        yield Stack(
            url=router.url,
            cron_secret=cron_secret,
            qstash_signing_key=settings.qstash_current_signing_key.get_secret_value(),
            sign_token=supabase.sign,
            issuer=supabase.issuer,
        )


def seed_user() -> tuple[uuid.UUID, str]:
    """A fresh contract user: an admin who is also a creator, with tokens (as a ledger row); (id, email)."""
    user_id = uuid.uuid4()
    email = f"contract_{user_id.hex[:12]}@example.test"
    with db.transaction() as conn:
        conn.execute(
            """INSERT INTO users (id, email, username, display_name, role, is_creator, video_price, voice_price)
               VALUES (%(id)s, %(email)s, %(name)s, 'Contract User', 'admin', true, 10, 6)""",
            {"id": user_id, "email": email, "name": f"contract_{user_id.hex[:12]}"},
        )
        conn.execute(
            "UPDATE users SET token_balance = %(b)s WHERE id = %(id)s", {"b": USER_BALANCE, "id": user_id}
        )
        conn.execute(
            """INSERT INTO token_transactions (user_id, type, amount, balance_after, reference_type,
                                               reference_id, idempotency_key)
               VALUES (%(id)s, 'adjustment', %(b)s, %(b)s, 'test', 'seed', %(k)s)""",
            {"id": user_id, "b": USER_BALANCE, "k": f"contract-seed:{user_id}"},
        )
    return user_id, email


def reset_rate_limits() -> int:
    """Forget every rate-limit window (the contract checks shapes; the limiter has its own tests)."""
    import redis as redis_py

    # Straight to Redis, not through the Upstash gateway: this is test housekeeping, with no 0.5 s budget.
    client = redis_py.Redis.from_url(REDIS_URL, socket_timeout=10)
    try:
        keys = list(client.scan_iter(match=redis.key("ratelimit") + "*", count=1000))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()
