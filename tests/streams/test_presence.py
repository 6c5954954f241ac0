"""Streams live as long as their host, with no heartbeats: Agora's channel events, token renewals, Pusher webhooks.

The frontend sends no heartbeat. A stream started from GoLivePage stays live while Agora says its host is in the
channel, ends HOST_TIMEOUT_S after Agora says the host left (a QStash check runs then), and its viewer count
follows Agora's audience events and Pusher's subscription counts, signed, at any size.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from lib import agora, db, streams
from localdev import soketi, vercel_router
from localdev.agora_ncs import AUDIENCE_JOIN, AgoraNcs, event_body, signature_headers
from localdev.qstash_server import sign as qstash_sign
from tests.conftest import TEST_ENV, MakeUser, SetEnv
from tests.conftest import TestUser as Person
from tests.lib.test_realtime import pusher_settings
from tests.streams.helpers import go_live, outbox, stream_row
from tests.support import functions
from tests.support.pusher_ws import PusherWsClient

NCS_SECRET = "test-agora-ncs-secret-0123456789"
TIMEOUT = timedelta(seconds=streams.HOST_TIMEOUT_S)
GO_LIVE_BODY = {
    "title": "No heartbeats",
    "category": "Music",
    "description": "d",
    "tags": [],
    "privacy": "public",
}


@pytest.fixture
def ncs(set_env: SetEnv) -> AgoraNcs:
    """Agora's notifications configured; a sender posting signed events to the function in-process."""
    set_env(AGORA_NCS_SECRET=NCS_SECRET)
    return AgoraNcs("http://testserver/api/webhooks/agora", NCS_SECRET)


def post_agora(body: dict[str, Any], secret: str = NCS_SECRET, headers: dict[str, str] | None = None) -> Any:
    raw = json.dumps(body, separators=(",", ":")).encode()
    sent = signature_headers(raw, secret) if headers is None else headers
    return functions.client("webhooks/agora.py").post("/api/webhooks/agora", content=raw, headers=sent)


def agora_event(event_type: int, channel: str, uid: int | None, at: datetime, seq: int = 1) -> Any:
    r = post_agora(event_body(event_type, channel, uid=uid, ts=int(at.timestamp()), client_seq=seq))
    assert r.status_code == 200, r.text
    return r.json()


def post_pusher(body: dict[str, Any], *, secret: str | None = None, key: str | None = None) -> Any:
    import hashlib
    import hmac

    raw = json.dumps(body).encode()
    digest = hmac.new((secret or TEST_ENV["PUSHER_SECRET"]).encode(), raw, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Pusher-Key": key or TEST_ENV["PUSHER_KEY"],
        "X-Pusher-Signature": digest,
    }
    return functions.client("webhooks/pusher.py").post("/api/webhooks/pusher", content=raw, headers=headers)


def uid_of(who: Person) -> int:
    with db.transaction() as conn:
        return agora.uid_for(conn, who.id)


def sweep(at: datetime) -> int:
    with db.transaction() as conn:
        return streams.end_stale_streams(conn, at)


def started(stream: dict[str, Any]) -> datetime:
    """The first whole second after the stream started (Agora's event times are whole seconds)."""
    value: datetime = stream_row(stream["id"])["started_at"]
    return value.replace(microsecond=0) + timedelta(seconds=1)


# ---- the host's presence -------------------------------------------------------------------------------------


def test_a_frontend_stream_lives_while_its_host_is_in_the_channel_and_ends_after_the_host_leaves(
    make_user: MakeUser, ncs: AgoraNcs
) -> None:
    host = make_user(role="creator")
    stream = go_live(host, **GO_LIVE_BODY)["stream"]
    t0 = started(stream)
    assert agora_event(103, stream["channel"], uid_of(host), t0 + timedelta(seconds=2)) == {
        "ok": True,
        "applied": 1,
    }
    for minute in (3, 5, 10):  # no heartbeat at all, ten simulated minutes
        assert sweep(t0 + timedelta(minutes=minute)) == 0
    assert stream_row(stream["id"])["status"] == "live"

    left = t0 + timedelta(minutes=10)
    assert agora_event(104, stream["channel"], uid_of(host), left, seq=2)["applied"] == 1
    assert stream_row(stream["id"])["host_in_channel"] is False
    assert sweep(left + TIMEOUT) == 0  # a reconnect within the timeout would keep the stream
    assert sweep(left + TIMEOUT + timedelta(seconds=1)) == 1
    row = stream_row(stream["id"])
    assert (row["status"], row["end_reason"], row["ended_at"]) == ("ended", "heartbeat_timeout", left)
    assert [e["payload"] for e in outbox("stream-ended")] == [
        {"streamId": stream["id"], "channel": stream["channel"], "creatorId": str(host.id)}
    ]


def test_the_check_job_ends_the_stream_minutes_after_the_host_left_without_a_cron(
    make_user: MakeUser, ncs: AgoraNcs
) -> None:
    host = make_user(role="creator")
    stream = go_live(host, **GO_LIVE_BODY)["stream"]
    t0 = started(stream)
    agora_event(103, stream["channel"], uid_of(host), t0)
    agora_event(104, stream["channel"], uid_of(host), t0 + timedelta(minutes=1), seq=2)
    with db.transaction() as conn:  # what the QStash check finds if it ran early: live, check again later
        early = streams.check_stream(conn, UUID(stream["id"]), now=t0 + timedelta(minutes=2))
    assert (early.ended, early.status) == (False, "live") and early.nextCheckIn is not None
    with db.transaction() as conn:
        on_time = streams.check_stream(
            conn, UUID(stream["id"]), now=t0 + timedelta(minutes=1) + TIMEOUT * 1.05
        )
    assert (on_time.ended, on_time.status, on_time.nextCheckIn) == (True, "ended", None)


def test_the_check_job_function_is_signed_by_qstash(make_user: MakeUser, ncs: AgoraNcs) -> None:
    host = make_user(role="creator")
    stream = go_live(host, **GO_LIVE_BODY)["stream"]
    with db.transaction() as conn:  # the host never joined and the go-live is 5 minutes old
        conn.execute(
            "UPDATE streams SET started_at = started_at - interval '5 minutes',"
            " last_heartbeat_at = last_heartbeat_at - interval '5 minutes' WHERE id = %(id)s",
            {"id": stream["id"]},
        )
    path = "/api/jobs/check-stream"
    body = json.dumps({"streamId": stream["id"]}, separators=(",", ":")).encode()
    key = TEST_ENV["QSTASH_CURRENT_SIGNING_KEY"]
    headers = {
        "Content-Type": "application/json",
        "Upstash-Signature": qstash_sign(key, url=TEST_ENV["PUBLIC_BASE_URL"] + path, body=body),
        "Upstash-Message-Id": "msg_check_1",
    }
    job = functions.client("jobs/check-stream.py")
    forged = dict(headers, **{"Upstash-Signature": qstash_sign("x" * 40, url="http://x" + path, body=body)})
    assert job.post(path, content=body, headers=forged).status_code == 401
    assert stream_row(stream["id"])["status"] == "live"
    r = job.post(path, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"streamId": stream["id"], "status": "ended", "ended": True, "nextCheckIn": None}
    again = job.post(path, content=body, headers=headers)  # a redelivery is harmless
    assert again.json()["ended"] is False and len(outbox("stream-ended")) == 1


def age(stream: dict[str, Any], minutes: int) -> None:
    """Move the stream `minutes` into the past: started and last heard that long ago."""
    with db.transaction() as conn:
        conn.execute(
            "UPDATE streams SET started_at = started_at - make_interval(mins => %(m)s),"
            " last_heartbeat_at = last_heartbeat_at - make_interval(mins => %(m)s) WHERE id = %(id)s",
            {"m": minutes, "id": stream["id"]},
        )


def test_the_hosts_token_renewal_counts_as_a_sign_of_life_and_a_viewers_does_not(
    make_user: MakeUser, ncs: AgoraNcs
) -> None:
    host, fan = make_user(role="creator"), make_user()
    token = functions.client("agora/token.py")
    watched = go_live(host, **GO_LIVE_BODY)["stream"]
    age(watched, 5)
    viewer = token.get(f"/api/agora/token?channel={watched['channel']}&role=audience", headers=fan.headers)
    assert viewer.status_code == 200, viewer.text
    assert sweep(datetime.now(UTC)) == 1  # a viewer's token says nothing about the host

    hosted = go_live(host, **GO_LIVE_BODY)["stream"]
    age(hosted, 5)
    renewed = token.get(f"/api/agora/token?channel={hosted['channel']}&role=host", headers=host.headers)
    assert renewed.status_code == 200, renewed.text
    row = stream_row(hosted["id"])
    assert datetime.now(UTC) - row["last_heartbeat_at"] < timedelta(seconds=30)
    assert row["host_lease_until"] == datetime.fromisoformat(renewed.json()["expiresAt"])
    assert sweep(datetime.now(UTC)) == 0 and stream_row(hosted["id"])["status"] == "live"


def test_without_agora_notifications_the_host_token_lease_keeps_the_stream(make_user: MakeUser) -> None:
    host = make_user(role="creator")
    stream = go_live(host, **GO_LIVE_BODY)["stream"]
    t0 = started(stream)
    lease = stream_row(stream["id"])["host_lease_until"]  # the go-live token's expiry
    assert (
        timedelta(seconds=agora.STREAM_TOKEN_TTL_S - 2)
        <= lease - t0
        <= timedelta(seconds=agora.STREAM_TOKEN_TTL_S)
    )
    assert sweep(t0 + timedelta(minutes=10)) == 0  # nobody can say the host left: the token's hour holds it
    assert sweep(lease - timedelta(seconds=1)) == 0
    assert sweep(lease + timedelta(seconds=1)) == 1


def test_a_forged_or_unsigned_agora_notification_is_401_and_changes_nothing(
    make_user: MakeUser, set_env: SetEnv
) -> None:
    host = make_user(role="creator")
    stream = go_live(host, **GO_LIVE_BODY)["stream"]
    body = event_body(103, stream["channel"], uid=uid_of(host), client_seq=1)
    raw = json.dumps(body).encode()
    assert post_agora(body).status_code == 401  # AGORA_NCS_SECRET not set: nothing is trusted
    set_env(AGORA_NCS_SECRET=NCS_SECRET)
    for headers in (
        signature_headers(raw, "wrong-secret"),
        {"Content-Type": "application/json"},
        {"Agora-Signature-V2": "0" * 64, "Agora-Signature": "0" * 40},
    ):
        r = functions.client("webhooks/agora.py").post("/api/webhooks/agora", content=raw, headers=headers)
        assert r.status_code == 401 and r.json()["code"] == "INVALID_SIGNATURE"
    assert stream_row(stream["id"])["host_in_channel"] is False
    # Either signature alone is enough when it is right.
    v1_only = {k: v for k, v in signature_headers(raw, NCS_SECRET).items() if k != "Agora-Signature-V2"}
    ok = functions.client("webhooks/agora.py").post("/api/webhooks/agora", content=raw, headers=v1_only)
    assert ok.status_code == 200 and stream_row(stream["id"])["host_in_channel"] is True
    bad = post_agora({"eventType": 103, "payload": {"channelName": "x"}})  # signed but missing ts
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_WEBHOOK_BODY"
    other = agora_event(103, "call-not-a-stream", 5, datetime.now(UTC))
    assert other == {"ok": True, "applied": 0}


# ---- the audience --------------------------------------------------------------------------------------------


def test_agora_audience_events_count_viewers_past_100_in_order_and_once(
    make_user: MakeUser, ncs: AgoraNcs
) -> None:
    host = make_user(role="creator")
    stream = go_live(host, **GO_LIVE_BODY)["stream"]
    channel, t0 = stream["channel"], started(stream)
    agora_event(103, channel, uid_of(host), t0)
    for uid in range(1, 151):  # 150 viewers: more than a Pusher presence channel may hold
        agora_event(105, channel, 900_000 + uid, t0 + timedelta(seconds=1))
    row = stream_row(stream["id"])
    assert (row["viewer_count"], row["peak_viewers"], row["agora_audience"]) == (150, 150, 150)
    assert agora_event(105, channel, 900_001, t0 + timedelta(seconds=1))["applied"] == 0  # a repeat
    for uid in range(1, 51):
        agora_event(106, channel, 900_000 + uid, t0 + timedelta(seconds=5), seq=2)
    assert agora_event(105, channel, 900_001, t0 + timedelta(seconds=2))["applied"] == 0  # late, older join
    assert agora_event(105, channel, uid_of(host), t0 + timedelta(seconds=6), seq=9)["applied"] == 0  # host
    row = stream_row(stream["id"])
    assert (row["viewer_count"], row["peak_viewers"], row["host_in_channel"]) == (100, 150, True)
    counts = [e for e in outbox("viewer-count") if e["channel"] == f"private-stream-{channel}"]
    assert counts and all(set(e["payload"]) == {"streamId", "channel", "count"} for e in counts)
    assert counts[0]["payload"]["channel"] == channel and counts[0]["payload"]["streamId"] == stream["id"]
    joined = functions.client("streaming/public/streams/live.py").get("/public/streams/live").json()
    assert [s["viewer_count"] for s in joined["streams"]] == [100]
    agora_event(102, channel, None, t0 + timedelta(seconds=30))  # channel destroyed: everyone is gone
    row = stream_row(stream["id"])
    assert (row["viewer_count"], row["host_in_channel"]) == (0, False)


def test_pusher_subscription_counts_set_the_viewer_count_at_any_size_and_forgeries_are_401(
    make_user: MakeUser,
) -> None:
    host = make_user(role="creator")
    stream = go_live(host, **GO_LIVE_BODY)["stream"]
    channel = f"private-stream-{stream['channel']}"
    now_ms = int(time.time() * 1000)

    def count(name: str, ms: int, n: int | None = None, **kw: Any) -> Any:
        event: dict[str, Any] = {"name": name, "channel": channel}
        if n is not None:
            event["subscription_count"] = n
        return post_pusher({"time_ms": ms, "events": [event]}, **kw)

    assert count("channel_occupied", now_ms).json() == {"ok": True, "applied": 1}
    assert stream_row(stream["id"])["viewer_count"] == 1
    assert count("subscription_count", now_ms + 1, 10_000).status_code == 200
    row = stream_row(stream["id"])
    assert (row["viewer_count"], row["peak_viewers"], row["pusher_subscribers"]) == (10_000, 10_000, 10_000)
    assert count("subscription_count", now_ms, 3).json()["applied"] == 0  # older than the stored count
    for forged in ({"secret": "not-the-secret"}, {"key": "not-the-key"}):
        r = count("subscription_count", now_ms + 2, 7, **forged)
        assert r.status_code == 401 and r.json()["code"] == "INVALID_SIGNATURE"
    assert stream_row(stream["id"])["viewer_count"] == 10_000
    batch = {
        "time_ms": now_ms + 3,
        "events": [
            {"name": "subscription_count", "channel": channel, "subscription_count": 250},
            {"name": "channel_vacated", "channel": "private-user-x"},  # not a stream: ignored
            {"name": "member_added", "channel": channel, "user_id": "u"},
        ],
    }
    assert post_pusher(batch).json() == {"ok": True, "applied": 1}
    assert stream_row(stream["id"])["viewer_count"] == 250
    assert count("channel_vacated", now_ms + 4).json()["applied"] == 1
    assert stream_row(stream["id"])["viewer_count"] == 0
    assert post_pusher({"time_ms": "soon", "events": []}).status_code == 400


# ---- soketi sending real webhooks ----------------------------------------------------------------------------


@pytest.fixture
def webhooked(clean: None) -> Iterator[tuple[soketi.Soketi, httpx.Client]]:
    """soketi posting stream-channel webhooks to the local Vercel router, which publishes back to soketi."""
    if not soketi.is_installed():
        pytest.skip("soketi not installed (node or localdev/node/node_modules missing)")
    port = soketi.free_port()
    hook = soketi.stream_webhook(f"http://127.0.0.1:{port}/api/webhooks/pusher")
    with (
        soketi.running(webhooks=[hook]) as pusher,
        pusher_settings(pusher.host, pusher.port, secret=pusher.secret),
        vercel_router.running(cron_secret=TEST_ENV["CRON_SECRET"], port=port) as router,
        httpx.Client(base_url=router.url, timeout=30, trust_env=False) as client,
    ):
        yield pusher, client


def wait_for_count(stream_id: str, expected: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while stream_row(stream_id)["pusher_subscribers"] != expected:
        assert time.monotonic() < deadline, f"pusher_subscribers never became {expected}"
        time.sleep(0.05)


def test_soketi_delivers_occupied_and_vacated_webhooks_end_to_end(
    webhooked: tuple[soketi.Soketi, httpx.Client], make_user: MakeUser
) -> None:
    pusher, server = webhooked
    host, fan = make_user(role="creator"), make_user()
    live = server.post("/api/v1/streaming/go-live", json=GO_LIVE_BODY, headers=host.headers)
    assert live.status_code == 200, live.text
    stream = live.json()["stream"]
    channel = f"private-stream-{stream['channel']}"

    def authorize(socket_id: str, name: str) -> dict[str, Any]:
        r = server.post(
            "/api/v1/realtime/pusher/auth",
            data={"socket_id": socket_id, "channel_name": name},
            headers=fan.headers,
        )
        assert r.status_code == 200, r.text
        signed: dict[str, Any] = r.json()
        return signed

    with PusherWsClient(pusher.ws_url) as ws:
        ws.subscribe(channel, authorize)
        wait_for_count(stream["id"], 1)  # soketi -> signed channel_occupied -> /api/webhooks/pusher
        assert ws.wait_for("viewer-count", channel, 5.0) == {
            "streamId": stream["id"],
            "channel": stream["channel"],
            "count": 1,
        }
        ws.unsubscribe(channel)
        wait_for_count(stream["id"], 0)  # channel_vacated
    assert stream_row(stream["id"])["viewer_count"] == 0


def test_soketi_refuses_webhook_kinds_it_cannot_send(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="subscription_count"):
        soketi.write_config(
            tmp_path, port=1, metrics_port=2, cluster_port=3, app_id="1", key="k", secret="s",
            webhooks=[{"url": "http://x", "event_types": ["subscription_count"]}],
        )  # fmt: skip
    assert AUDIENCE_JOIN == 105
