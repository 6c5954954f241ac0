"""The one table of development and test defaults: every env var the functions read, pointed at localdev."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields

HOST = "127.0.0.1"

# Supabase's own local-development secret (supabase CLI), so tokens minted by its tools verify here too.
SUPABASE_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
UPSTASH_TOKEN = "digis-local-upstash-token"
QSTASH_TOKEN = "digis-local-qstash-token"
QSTASH_CURRENT_SIGNING_KEY = "sig_digis_local_current_0123456789abcdef"
QSTASH_NEXT_SIGNING_KEY = "sig_digis_local_next_fedcba9876543210abcd"
PUSHER_APP_ID = "1000001"
PUSHER_KEY = "digis-local-key"
PUSHER_SECRET = "digis-local-secret"
STRIPE_SECRET_KEY = "sk_test_digis_local_0000000000000000"
STRIPE_CONNECT_WEBHOOK_SECRET = "whsec_digis_local_connect_0000000000"
STRIPE_WEBHOOK_SECRET = "whsec_digis_local_0000000000000000"
AGORA_APP_ID = "0123456789abcdef0123456789abcdef"
AGORA_APP_CERTIFICATE = "fedcba9876543210fedcba9876543210"
AGORA_NCS_SECRET = "local-agora-ncs-secret"  # localdev.agora_ncs signs channel events with it
SENTRY_KEY = "digislocal"
CRON_SECRET = "digis-local-cron-secret-0000000000"
ALLOWED_ORIGINS = "http://localhost:5173,http://127.0.0.1:5173"
DATABASE_NAME = "digis"


@dataclass(frozen=True)
class Ports:
    """Where each local service listens (scripts/dev's fixed ports by default)."""

    api: int = 3000
    upstash: int = 8079
    qstash: int = 8080
    soketi: int = 6001
    sentry: int = 8082
    supabase: int = 8083
    stripe: int = 8420
    stripe_connect: int = 8421
    postgres: int = 5432
    redis: int = 6379
    embedded_postgres: int = 54329
    embedded_redis: int = 63790

    def replace(self, **changes: int) -> Ports:
        """A copy with some ports changed (unknown names are an error)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            names = ", ".join(sorted(unknown))
            raise ValueError(f"unknown port name(s): {names}; known: {', '.join(sorted(known))}")
        return Ports(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})


DEV_PORTS = Ports()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_jwt(claims: Mapping[str, object], secret: str) -> str:
    """A compact HS256 JWT (fixed header, claims in the given order), without importing PyJWT."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def service_role_key(secret: str = SUPABASE_JWT_SECRET) -> str:
    """A service-role key like Supabase's: an HS256 JWT with role service_role, signed with `secret`."""
    # The claims of the supabase CLI's local key: with its secret this is byte-for-byte that well-known key.
    return hs256_jwt({"iss": "supabase-demo", "role": "service_role", "exp": 1983812996}, secret)


def defaults(ports: Ports = DEV_PORTS) -> dict[str, str]:
    """Every env var for development against the local stand-ins on `ports`."""
    base = f"http://{HOST}"
    return {
        "ENVIRONMENT": "development",
        "DATABASE_URL": f"postgresql://postgres@{HOST}:{ports.postgres}/{DATABASE_NAME}",
        "SUPABASE_URL": f"{base}:{ports.supabase}",
        "SUPABASE_JWT_SECRET": SUPABASE_JWT_SECRET,
        "SUPABASE_SERVICE_ROLE_KEY": service_role_key(SUPABASE_JWT_SECRET),
        "UPSTASH_REDIS_REST_URL": f"{base}:{ports.upstash}",
        "UPSTASH_REDIS_REST_TOKEN": UPSTASH_TOKEN,
        "QSTASH_URL": f"{base}:{ports.qstash}",
        "QSTASH_TOKEN": QSTASH_TOKEN,
        "QSTASH_CURRENT_SIGNING_KEY": QSTASH_CURRENT_SIGNING_KEY,
        "QSTASH_NEXT_SIGNING_KEY": QSTASH_NEXT_SIGNING_KEY,
        "PUBLIC_BASE_URL": f"{base}:{ports.api}",
        "PUSHER_APP_ID": PUSHER_APP_ID,
        "PUSHER_KEY": PUSHER_KEY,
        "PUSHER_SECRET": PUSHER_SECRET,
        "PUSHER_HOST": HOST,
        "PUSHER_PORT": str(ports.soketi),
        "PUSHER_USE_TLS": "false",
        "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        "STRIPE_CONNECT_WEBHOOK_SECRET": STRIPE_CONNECT_WEBHOOK_SECRET,
        "STRIPE_API_BASE": f"{base}:{ports.stripe_connect}",
        "AGORA_APP_ID": AGORA_APP_ID,
        "AGORA_APP_CERTIFICATE": AGORA_APP_CERTIFICATE,
        "AGORA_NCS_SECRET": AGORA_NCS_SECRET,
        "SENTRY_DSN": f"http://{SENTRY_KEY}@{HOST}:{ports.sentry}/1",
        "CRON_SECRET": CRON_SECRET,
        "ALLOWED_ORIGINS": ALLOWED_ORIGINS,
    }


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines (blank lines, `#` comments, `export ` prefixes and surrounding quotes allowed)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"not KEY=VALUE: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def render_env_file(values: Mapping[str, str], *, export: bool = False) -> str:
    """`.env.local.example` lines for `values`, or (`export`) `export KEY='VALUE'` lines a shell can source."""
    if export:
        lines = ["# The running local platform's environment (scripts/dev writes it): source .local/dev.env"]
        lines += ["export {}='{}'".format(key, value.replace("'", "'\\''")) for key, value in values.items()]
    else:
        lines = [
            "# Local development defaults from localdev/devenv.py.",
            "# Regenerate: python -m localdev.devenv > .env.local.example",
            "# Copy to .env.local to override any of them for scripts/dev; no real secrets here.",
        ]
        lines += [f"{key}={value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the defaults as an env file (or as JSON)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of KEY=VALUE lines")
    args = parser.parse_args(argv)
    values = defaults()
    sys.stdout.write(json.dumps(values, indent=2) + "\n" if args.json else render_env_file(values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
