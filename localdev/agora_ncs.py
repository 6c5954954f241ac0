"""Agora's Notifications (NCS) as a local sender: signed channel events posted to the API's /api/webhooks/agora.

Agora's media servers cannot run here; this plays the part that matters to the API: the callback Agora sends when
someone joins or leaves a channel, in Agora's format and signed the way Agora signs it.

    python -m localdev.agora_ncs --url http://127.0.0.1:3000/api/webhooks/agora --secret S \\
        --event 103 --channel stream-<hex> --uid 100001

Body: `{noticeId, productId: 1, eventType, notifyMs, sid, payload: {channelName, uid, platform, clientSeq, ts}}`;
headers `Agora-Signature` (hex HMAC-SHA1 of the raw body with the secret) and `Agora-Signature-V2` (hex
HMAC-SHA256). Event types: 101/102 channel create/destroy, 103/104 broadcaster join/leave, 105/106 audience
join/leave, 111/112 role switched to broadcaster/audience.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

CHANNEL_CREATE, CHANNEL_DESTROY = 101, 102
HOST_JOIN, HOST_LEAVE, AUDIENCE_JOIN, AUDIENCE_LEAVE = 103, 104, 105, 106
BECAME_HOST, BECAME_AUDIENCE = 111, 112
PLATFORM_WEB = 7


def signature_headers(raw: bytes, secret: str) -> dict[str, str]:
    """The headers Agora sends with a notification whose body is `raw`."""
    return {
        "Content-Type": "application/json",
        "Agora-Signature": hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest(),
        "Agora-Signature-V2": hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest(),
    }


def event_body(
    event_type: int,
    channel: str,
    *,
    uid: int | None = None,
    ts: int | None = None,
    client_seq: int | None = None,
    notice_id: str | None = None,
) -> dict[str, Any]:
    """One notification body in Agora's format (`ts` in unix seconds, defaulting to now)."""
    payload: dict[str, Any] = {"channelName": channel, "ts": int(time.time()) if ts is None else ts}
    if uid is not None:
        payload.update(uid=uid, platform=PLATFORM_WEB, clientSeq=client_seq or 0)
        if event_type in (HOST_LEAVE, AUDIENCE_LEAVE):
            payload["reason"] = 1  # quit
    return {
        "noticeId": notice_id or f"{uuid.uuid4().int % 10**10}:{event_type}",
        "productId": 1,
        "eventType": event_type,
        "notifyMs": int(time.time() * 1000),
        "sid": uuid.uuid4().hex.upper()[:16],
        "payload": payload,
    }


@dataclass
class AgoraNcs:
    """A sender bound to the API's webhook URL and the Notifications secret; numbers each user's events."""

    url: str
    secret: str
    timeout_s: float = 10.0
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, body: dict[str, Any], *, secret: str | None = None) -> httpx.Response:
        """POST one notification, signed (with another secret to forge one)."""
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = signature_headers(raw, self.secret if secret is None else secret)
        return httpx.post(self.url, content=raw, headers=headers, timeout=self.timeout_s, trust_env=False)

    def event(
        self, event_type: int, channel: str, uid: int | None = None, *, ts: int | None = None
    ) -> httpx.Response:
        """Send `event_type` for `uid` on `channel` with the next client sequence number."""
        with self._lock:
            seq = next(self._seq)
        return self.send(event_body(event_type, channel, uid=uid, ts=ts, client_seq=seq))

    def host_join(self, channel: str, uid: int, *, ts: int | None = None) -> httpx.Response:
        """The broadcaster joined."""
        return self.event(HOST_JOIN, channel, uid, ts=ts)

    def host_leave(self, channel: str, uid: int, *, ts: int | None = None) -> httpx.Response:
        """The broadcaster left."""
        return self.event(HOST_LEAVE, channel, uid, ts=ts)

    def audience_join(self, channel: str, uid: int, *, ts: int | None = None) -> httpx.Response:
        """An audience member joined."""
        return self.event(AUDIENCE_JOIN, channel, uid, ts=ts)

    def audience_leave(self, channel: str, uid: int, *, ts: int | None = None) -> httpx.Response:
        """An audience member left."""
        return self.event(AUDIENCE_LEAVE, channel, uid, ts=ts)


def main(argv: list[str] | None = None) -> int:
    """Send one signed event; prints the API's answer."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:3000/api/webhooks/agora")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--event", type=int, required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--uid", type=int)
    parser.add_argument("--ts", type=int)
    args = parser.parse_args(argv)
    response = AgoraNcs(args.url, args.secret).event(args.event, args.channel, args.uid, ts=args.ts)
    print(response.status_code, response.text)
    return 0 if response.is_success else 1


if __name__ == "__main__":
    sys.exit(main())
