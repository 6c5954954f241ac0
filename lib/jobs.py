"""Background work: publish QStash jobs after commit, verify their deliveries, claim each once; cron auth."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Annotated, Any

import httpx
import pydantic_core
from fastapi import Depends, Request
from pydantic import BaseModel
from qstash import QStash, Receiver
from qstash.message import PublishResponse

from lib import db
from lib.config import get_settings, settings_cached
from lib.errors import BadRequest, Unauthorized
from lib.urls import canonical_path

log = logging.getLogger("digis.jobs")

# Seconds of clock skew tolerated on the signature's nbf/exp (QStash's clock is not ours).
CLOCK_TOLERANCE_S = 5


@settings_cached
def _client() -> QStash:
    s = get_settings()
    # One attempt: a publish runs after the response, and the cron sweep covers one that fails.
    client = QStash(s.qstash_token.get_secret_value(), base_url=s.qstash_url, retry=False)
    # The SDK's own httpx client waits up to 600 s; a publish must never hold a function that long.
    client.http._client.timeout = httpx.Timeout(s.qstash_timeout_s)
    return client


def publish(path: str, body: dict[str, Any], *, delay_s: int = 0, dedup_id: str | None = None) -> str | None:
    """Send `body` as JSON to `PUBLIC_BASE_URL + path` via QStash; the message id, or None (logged).

    `path` is the canonical `/api/jobs/...` path. Call it after the commit (`publish_after_commit`): a failed
    publish never fails the transaction that asked for it; the cron sweep picks the work up instead.
    """
    if not path.startswith("/api/"):
        raise ValueError(f"job path must be the canonical /api/... path, got {path!r}")
    # Serialised here, outside the try: a body that is not JSON is a bug to surface, not an outage to log.
    payload = pydantic_core.to_json(body).decode()
    url = get_settings().public_base_url.rstrip("/") + path
    try:
        response = _client().message.publish(
            url=url,
            body=payload,
            content_type="application/json",
            delay=f"{delay_s}s" if delay_s > 0 else None,
            deduplication_id=dedup_id,
        )
    except Exception as exc:
        log.error("job publish to %s failed: %s", path, type(exc).__name__, exc_info=True)
        return None
    assert isinstance(response, PublishResponse)  # a single URL destination answers one response
    return response.message_id


def publish_after_commit(
    conn: db.Conn, path: str, body: dict[str, Any], *, delay_s: int = 0, dedup_id: str | None = None
) -> None:
    """Publish the job once the transaction on `conn` commits (never if it rolls back)."""

    def publish_job() -> None:
        publish(path, body, delay_s=delay_s, dedup_id=dedup_id)

    db.after_commit(conn, publish_job)


class JobMessage(BaseModel):
    """A QStash delivery whose signature checked out."""

    body: dict[str, Any]
    message_id: str
    retried: int


@settings_cached
def _receiver() -> Receiver:
    s = get_settings()
    return Receiver(
        s.qstash_current_signing_key.get_secret_value(), s.qstash_next_signing_key.get_secret_value()
    )


def signed_url(request: Request) -> str:
    """The URL QStash signed: PUBLIC_BASE_URL + the canonical `/api/...` path, whichever prefix was used."""
    query = request.scope.get("query_string", b"")
    path = canonical_path(request.scope["path"], query)
    if not path.startswith("/api/"):
        path = "/api" + path
    url = get_settings().public_base_url.rstrip("/") + path
    return f"{url}?{query.decode('latin-1')}" if query else url


async def verify_qstash_job(request: Request) -> JobMessage:
    """FastAPI dependency for `/jobs/*`: a valid `Upstash-Signature` over this URL and raw body, or 401."""
    signature = request.headers.get("upstash-signature")
    if not signature:
        raise Unauthorized("Missing Upstash-Signature", code="INVALID_SIGNATURE")
    raw = await request.body()
    url = signed_url(request)
    try:
        # Any failure is a rejection, including a body that is not UTF-8 and a token without a `body` claim.
        _receiver().verify(signature=signature, body=raw.decode(), url=url, clock_tolerance=CLOCK_TOLERANCE_S)
    except Exception as exc:
        log.warning("rejected job delivery to %s: %s", url, exc)
        raise Unauthorized("Invalid Upstash-Signature", code="INVALID_SIGNATURE") from exc
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise BadRequest("Job body is not JSON", code="INVALID_JOB_BODY") from exc
    if not isinstance(payload, dict):
        raise BadRequest("Job body must be a JSON object", code="INVALID_JOB_BODY")
    message_id = request.headers.get("upstash-message-id")
    if not message_id:
        raise BadRequest("Missing Upstash-Message-Id", code="INVALID_JOB_BODY")
    retried = request.headers.get("upstash-retried", "0")
    return JobMessage(body=payload, message_id=message_id, retried=int(retried) if retried.isdigit() else 0)


QStashJob = Annotated[JobMessage, Depends(verify_qstash_job)]


def claim_delivery(conn: db.Conn, message_id: str) -> bool:
    """Record the message in the caller's transaction; False when a delivery of it already committed.

    A concurrent redelivery waits on the first one's row lock and gets False once that commits.
    """
    row = conn.execute(
        "INSERT INTO job_deliveries (message_id) VALUES (%(message_id)s)"
        " ON CONFLICT ON CONSTRAINT job_deliveries_pkey DO NOTHING RETURNING message_id",
        {"message_id": message_id},
    ).fetchone()
    return row is not None


def verify_cron(request: Request) -> None:
    """FastAPI dependency for `/cron/*`: `Authorization: Bearer CRON_SECRET` (constant-time), or 401."""
    secret = get_settings().cron_secret.get_secret_value().encode()
    scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
    if not secret or scheme.lower() != "bearer" or not hmac.compare_digest(supplied.strip().encode(), secret):
        raise Unauthorized()


CronAuth = Annotated[None, Depends(verify_cron)]


def purge_deliveries(conn: db.Conn, *, older_than_days: int = 7) -> int:
    """Forget delivery claims older than QStash's retry horizon (cleanup cron); how many went."""
    cur = conn.execute(
        "DELETE FROM job_deliveries WHERE claimed_at < now() - make_interval(days => %(d)s)",
        {"d": older_than_days},
    )
    return cur.rowcount
