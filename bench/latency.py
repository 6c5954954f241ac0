"""Row: end-to-end latency of the two asynchronous paths.

- Realtime: a fan's POST /tips/send, committed, to `tip:received` arriving on the creator's websocket, subscribed
  through soketi with a signature from the real /realtime/pusher/auth. Timed from the request's start (so the
  figure includes the tip itself) and from its response (the commit precedes it, the Pusher publish follows it).
- Webhook: a `payment_intent.succeeded` signed exactly as Stripe signs (`Stripe-Signature: t=..,v1=hex(HMAC-SHA256(
  whsec, f"{t}.{payload}"))`) from its arrival to its 200, which the function sends only after the credit's
  transaction committed; every credit is then checked in the database.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import psycopg

from bench import auth, client, seed, stack
from bench.client import SourceIps
from localdev import devenv


class Http:
    """A keep-alive stdlib connection from a fresh loopback address every `per_ip` requests."""

    def __init__(self, url: str, ips: SourceIps, per_ip: int = 100) -> None:
        self.host, self.port = client.split_url(url)
        self.ips, self.per_ip = ips, per_ip
        self.conn: http.client.HTTPConnection | None = None
        self.used = 0

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """(status, body)."""
        if self.conn is None or self.used >= self.per_ip:
            self.close()
            self.conn = http.client.HTTPConnection(
                self.host, self.port, timeout=30, source_address=(self.ips.next(), 0)
            )
            self.used = 0
        self.used += 1
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        """Close the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "samples": len(values),
        "p50_ms": client.percentile(values, 50) * 1000,
        "p99_ms": client.percentile(values, 99) * 1000,
        "max_ms": max(values, default=0.0) * 1000,
    }


def realtime_tips(st: stack.Stack, *, samples: int, creator: int, first_fan: int) -> dict[str, Any]:
    """Tip -> `tip:received` on the creator's subscribed websocket."""
    from tests.support.pusher_ws import PusherWsClient

    assert st.soketi_port is not None
    creator_id = seed.creator_id(creator)
    http = Http(st.router_url, SourceIps(200_000))
    creator_auth = dict([auth.bearer(creator_id)])

    def authorize(socket_id: str, channel: str) -> dict[str, Any]:
        form = urlencode({"socket_id": socket_id, "channel_name": channel}).encode()
        headers = {**creator_auth, "content-type": "application/x-www-form-urlencoded"}
        status, body = http.request("POST", "/api/realtime/pusher/auth", form, headers)
        if status != 200:
            raise RuntimeError(f"pusher auth answered {status}: {body[:300]!r}")
        answer: dict[str, Any] = json.loads(body)
        return answer

    channel = f"private-user-{creator_id}"
    ws_url = f"ws://127.0.0.1:{st.soketi_port}/app/{stack.PUSHER_KEY}?protocol=7"
    from_start: list[float] = []
    from_response: list[float] = []
    missed = 0
    with PusherWsClient(ws_url, timeout_s=10) as ws:
        ws.subscribe(channel, authorize)
        body = json.dumps({"toCreatorId": str(creator_id), "amountTokens": 1}).encode()
        for i in range(samples):
            headers = {**dict([auth.bearer(seed.fan_id(first_fan + i))]), "content-type": "application/json"}
            t0 = time.monotonic()
            status, answer = http.request("POST", "/api/tips/send", body, headers)
            t1 = time.monotonic()
            if status != 200:
                raise RuntimeError(f"tip answered {status}: {answer[:300]!r}")
            tip_id = json.loads(answer)["tipId"]
            try:
                while True:
                    msg = ws.next_message("tip:received", channel, timeout=5)
                    if msg.data.get("tipId") == tip_id:
                        break
            except TimeoutError:
                missed += 1
                continue
            from_start.append(msg.received_at - t0)
            from_response.append(msg.received_at - t1)
    http.close()
    return {"from_request": _summary(from_start), "from_response": _summary(from_response), "missed": missed}


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe sends for `payload`."""
    t = int(time.time()) if timestamp is None else timestamp
    signed = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={signed}"


def payment_succeeded(user_id: uuid.UUID, tokens: int, amount_cents: int) -> tuple[str, bytes]:
    """(intent id, event body) of a `payment_intent.succeeded` for a token pack."""
    intent = f"pi_bench_{uuid.uuid4().hex}"
    event = {
        "id": f"evt_bench_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": intent,
                "object": "payment_intent",
                "amount": amount_cents,
                "amount_received": amount_cents,
                "currency": "usd",
                "status": "succeeded",
                "metadata": {"user_id": str(user_id), "tokens": str(tokens)},
            }
        },
    }
    return intent, json.dumps(event).encode()


def webhooks(st: stack.Stack, *, samples: int, first_fan: int) -> dict[str, Any]:
    """Signed payment_intent.succeeded -> 200 (credit committed), then every credit checked in the database."""
    http = Http(st.router_url, SourceIps(300_000))
    latencies: list[float] = []
    intents: list[str] = []
    tokens = 50
    for i in range(samples):
        intent, payload = payment_succeeded(seed.fan_id(first_fan + i), tokens, 500)
        headers = {
            "content-type": "application/json",
            "stripe-signature": stripe_signature(payload, devenv.STRIPE_WEBHOOK_SECRET),
        }
        t0 = time.monotonic()
        status, answer = http.request("POST", "/api/payments/webhook", payload, headers)
        latencies.append(time.monotonic() - t0)
        if status != 200:
            raise RuntimeError(f"webhook answered {status}: {answer[:300]!r}")
        intents.append(intent)
    http.close()
    with psycopg.connect(stack.database_url(st.database)) as conn:
        row = conn.execute(
            """SELECT count(*) FROM payments p
               JOIN token_transactions t ON t.reference_type = 'stripe_payment_intent'
                                        AND t.reference_id = p.stripe_payment_intent_id AND t.type = 'purchase'
               WHERE p.stripe_payment_intent_id = ANY(%s) AND p.tokens_applied = %s AND t.amount = %s""",
            (intents, tokens, tokens),
        ).fetchone()
    credited = int(row[0]) if row else 0
    return {**_summary(latencies), "credited": credited, "sent": samples}
