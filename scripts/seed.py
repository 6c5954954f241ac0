"""Demo data for the local platform: creators with rates, fans with tokens, an admin; prints bearer tokens.

Idempotent: fixed ids, upserts, and ledger credits keyed so a second run changes nothing.
`python -m scripts.seed` (scripts/dev runs it after migrating).
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass

import jwt

from lib import db, ledger
from lib.config import get_settings

TOKEN_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Demo:
    """One demo account."""

    username: str
    role: str
    is_creator: bool
    tokens: int = 0
    video_price: int | None = None
    voice_price: int | None = None
    bio: str | None = None

    @property
    def id(self) -> uuid.UUID:
        """A stable id per username, so reruns and bookmarks keep working."""
        return uuid.uuid5(uuid.NAMESPACE_URL, f"https://digis.local/demo/{self.username}")

    @property
    def email(self) -> str:
        """Demo mailbox."""
        return f"{self.username}@demo.digis.local"


DEMO = [
    Demo("demo_creator", "creator", True, video_price=10, voice_price=6, bio="Calls and streams, all day."),
    Demo(
        "demo_creator_2",
        "creator",
        True,
        video_price=25,
        voice_price=15,
        bio="Coach; video calls by the minute.",
    ),
    Demo("demo_creator_3", "creator", True, video_price=5, voice_price=3, bio="Music and Q&A streams."),
    Demo("demo_fan", "fan", False, tokens=500),
    Demo("demo_fan_2", "fan", False, tokens=60),
    Demo("demo_admin", "admin", False, tokens=0),
]


def seed() -> list[Demo]:
    """Upsert the demo users and fund the fans through the ledger."""
    with db.transaction() as conn:
        ledger.ensure_platform_account(conn)
        for d in DEMO:
            conn.execute(
                """INSERT INTO users (id, email, username, display_name, bio, role, is_creator,
                                      video_price, voice_price)
                   VALUES (%(id)s, %(email)s, %(u)s, %(display)s, %(bio)s, %(role)s, %(creator)s, %(vp)s, %(vo)s)
                   ON CONFLICT (id) DO UPDATE
                     SET role = EXCLUDED.role, is_creator = EXCLUDED.is_creator,
                         video_price = EXCLUDED.video_price, voice_price = EXCLUDED.voice_price,
                         bio = EXCLUDED.bio""",
                {
                    "id": d.id,
                    "email": d.email,
                    "u": d.username,
                    "display": d.username.replace("_", " ").title(),
                    "bio": d.bio,
                    "role": d.role,
                    "creator": d.is_creator,
                    "vp": d.video_price,
                    "vo": d.voice_price,
                },
            )
            if d.tokens:
                ledger.credit(
                    conn,
                    user_id=d.id,
                    amount=d.tokens,
                    kind="adjustment",
                    reference_type="seed",
                    reference_id=d.username,
                    idempotency_key=f"seed:{d.id}",
                    metadata={"note": "demo balance"},
                )
    return DEMO


def token_for(d: Demo) -> str:
    """A Supabase-shaped access token for a demo user (HS256 with SUPABASE_JWT_SECRET)."""
    s = get_settings()
    now = int(time.time())
    claims = {
        "sub": str(d.id),
        "email": d.email,
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + TOKEN_TTL_S,
    }
    if s.supabase_url:
        claims["iss"] = s.supabase_url.rstrip("/") + "/auth/v1"
    return jwt.encode(claims, s.supabase_jwt_secret.get_secret_value(), algorithm="HS256")


def main() -> int:
    """Seed and print one ready bearer token per demo user."""
    if not get_settings().is_local:
        print("seed: refusing to seed outside ENVIRONMENT=development/test", file=sys.stderr)
        return 2
    users = seed()
    print("demo users (bearer tokens valid 7 days):")
    for d in users:
        balance = f", {d.tokens} tokens" if d.tokens else ""
        print(f"  {d.username:<15} {d.role:<8} id={d.id}{balance}")
        print(f"    export TOKEN_{d.username.upper()}={token_for(d)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
