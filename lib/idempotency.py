"""Idempotency-Key for POST routes (API.md): replay the first success, 422 on reuse with another body, 409 in flight.

Use it in a route as a dependency plus one call:

    def send(body: TipIn, user: CurrentUser, conn: DbConn, idem: IdempotencyKey) -> JSONResponse:
        return idem.run(conn, user.id, lambda: tips.send_tip(conn, user, body))

How it holds: `run` takes a transaction-scoped advisory lock on (user, key) without waiting (taken: 409
`IDEMPOTENCY_KEY_IN_FLIGHT`), then looks for a record of the key. A record with the same fingerprint (method,
path, canonical JSON body) is replayed with `Idempotency-Replayed: true`; another fingerprint is 422
`IDEMPOTENCY_KEY_REUSED`. Otherwise the work runs and its response is recorded in the same transaction, so a key
is recorded if and only if its effects committed. A failed attempt (any error) records nothing and may be retried
with the same key. Records live 24 hours (`purge_expired` from the cleanup cron).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb

from lib.db import Conn
from lib.errors import Conflict, Unprocessable

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
TTL_S = 24 * 3600
REPLAYED_HEADER = "Idempotency-Replayed"


@dataclass(frozen=True)
class IdempotentRequest:
    """The request's Idempotency-Key (None when absent) and the fingerprint of what it asks for."""

    key: str | None
    fingerprint: str

    def run(
        self, conn: Conn, user_id: UUID, work: Callable[[], Any], *, status_code: int = 200
    ) -> JSONResponse:
        """The recorded response for this key, or `work()`'s result recorded under it (see the module doc)."""
        if self.key is None:
            return JSONResponse(jsonable_encoder(work()), status_code=status_code)
        if not _try_lock(conn, user_id, self.key):
            raise Conflict(
                "A request with this Idempotency-Key is still in progress", code="IDEMPOTENCY_KEY_IN_FLIGHT"
            )
        found = conn.execute(
            """SELECT fingerprint, status_code, response FROM idempotency_keys
               WHERE user_id = %(u)s AND key = %(k)s AND created_at > now() - make_interval(secs => %(ttl)s)""",
            {"u": user_id, "k": self.key, "ttl": TTL_S},
        ).fetchone()
        if found is not None:
            if found["fingerprint"] != self.fingerprint:
                raise Unprocessable(
                    "This Idempotency-Key was already used with a different request",
                    code="IDEMPOTENCY_KEY_REUSED",
                )
            return JSONResponse(
                found["response"], status_code=found["status_code"], headers={REPLAYED_HEADER: "true"}
            )
        body = jsonable_encoder(work())
        # An expired record of the same key is replaced; a live one cannot exist (we hold the lock and looked).
        conn.execute(
            """INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response)
               VALUES (%(u)s, %(k)s, %(f)s, %(s)s, %(r)s)
               ON CONFLICT (user_id, key) DO UPDATE
               SET fingerprint = EXCLUDED.fingerprint, status_code = EXCLUDED.status_code,
                   response = EXCLUDED.response, created_at = now()""",
            {"u": user_id, "k": self.key, "f": self.fingerprint, "s": status_code, "r": Jsonb(body)},
        )
        return JSONResponse(body, status_code=status_code)


async def idempotent_request(request: Request) -> IdempotentRequest:
    """FastAPI dependency: read and check the header, fingerprint the request."""
    key = request.headers.get(HEADER)
    if key is not None and not (1 <= len(key) <= MAX_KEY_LENGTH and key.isprintable()):
        raise Unprocessable(
            f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable characters",
            code="VALIDATION_ERROR",
            errors=[{"field": HEADER, "message": "invalid", "type": "value_error"}],
        )
    return IdempotentRequest(key, fingerprint(request.method, request.url.path, await request.body()))


IdempotencyKey = Annotated[IdempotentRequest, Depends(idempotent_request)]


def fingerprint(method: str, path: str, body: bytes) -> str:
    """sha256 over method, path and the body (as canonical JSON when it parses, so whitespace does not matter)."""
    try:
        canonical = (
            json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
        )
    except ValueError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def purge_expired(conn: Conn) -> int:
    """Delete records past their 24 hours; returns how many."""
    cur = conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => %(ttl)s)",
        {"ttl": TTL_S},
    )
    return cur.rowcount


def _try_lock(conn: Conn, user_id: UUID, key: str) -> bool:
    digest = hashlib.sha256(f"idempotency:{user_id}:{key}".encode()).digest()
    lock_id = int.from_bytes(digest[:8], "big", signed=True)
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%(id)s::bigint) AS ok", {"id": lock_id}).fetchone()
    return bool(row and row["ok"])
