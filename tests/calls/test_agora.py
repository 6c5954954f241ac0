"""Agora: the published token vector, tokens tied to paid time, who gets one, and the kick behind its breaker."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

from agora_token_builder.AccessToken import AccessToken

from lib import agora, calls, db
from tests.calls.helpers import (
    as_user,
    both_beat,
    call_row,
    client,
    connect,
    in_tx,
    real_now,
    seconds,
)
from tests.conftest import MakeUser, SetEnv
from tests.conftest import TestUser as Person

VECTOR = "006970CA35de60c44645bbae8a215061b33IACV0fZUBw+72cVoL9eyGGh3Q6Poi8bgjwVLnyKSJyOXR7dIfRBXoFHlEAABAAAAR/QQAAEAAQCvKDdW"
CUSTOMER = {"AGORA_CUSTOMER_ID": "cust-id", "AGORA_CUSTOMER_SECRET": "cust-secret"}


def privileges(token: str) -> dict[int, int]:
    """The privilege -> expiry map inside a v006 token."""
    parsed = AccessToken()
    assert parsed.fromString(token)
    return dict(parsed.messages)


def token_route(who: Person, channel: str, role: str | None = None) -> Any:
    query = f"?channel={channel}" + (f"&role={role}" if role else "")
    return client("agora/token.py").get(f"/api/agora/token{query}", headers=who.headers)


def test_rtc_token_matches_agoras_published_vector() -> None:
    token = agora.rtc_token(
        "7d72365eb983485397e3e3f9d460bdda",
        2882341273,
        role="audience",
        expires_at=1446455471,
        salt=1,
        issued_at=1111111,
    )
    assert token == VECTOR


def test_a_host_token_may_publish_and_an_audience_token_only_join() -> None:
    host = privileges(agora.rtc_token("chan", 7, role="host", expires_at=2_000_000_000))
    audience = privileges(agora.rtc_token("chan", 7, role="audience", expires_at=2_000_000_000))
    assert host == {1: 2_000_000_000, 2: 2_000_000_000, 3: 2_000_000_000, 4: 2_000_000_000}
    assert audience == {1: 2_000_000_000}


def test_every_user_has_a_stable_distinct_uid(make_user: MakeUser) -> None:
    a, b = make_user(), make_user()
    with db.transaction() as conn:
        first = agora.uid_for(conn, a.id)
        assert agora.uid_for(conn, a.id) == first
        assert agora.uid_for(conn, b.id) != first
    assert 0 < first < 2**32


def test_call_token_expires_when_the_paid_time_runs_out(fan: Person, creator: Person) -> None:
    r = client("calls/[call_id]/accept.py").post(
        f"/api/calls/{_ring(fan, creator)}/accept", headers=creator.headers
    )
    assert r.status_code == 200, r.text
    body = r.json()
    connected = call_row(UUID(body["callId"])).connected_at
    assert connected is not None
    paid_until = int(connected.timestamp()) + 60
    assert set(privileges(body["token"]).values()) == {paid_until + agora.GRACE_S}
    assert datetime.fromisoformat(body["expiresAt"]).timestamp() == paid_until + agora.GRACE_S


def _ring(fan: Person, creator: Person) -> str:
    r = client("calls/request.py").post(
        "/api/calls/request", json={"creatorId": str(creator.id), "callType": "video"}, headers=fan.headers
    )
    assert r.status_code == 200, r.text
    return str(r.json()["callId"])


def test_token_is_renewed_after_each_paid_minute(fan: Person, creator: Person) -> None:
    now = real_now()
    call_id = connect(fan, creator, now - seconds(61))
    both_beat(fan, creator, call_id, now - seconds(30))
    channel = call_row(call_id).channel
    before = token_route(fan, channel).json()
    in_tx(calls.bill_call_minute, call_id, 2, now)
    after = token_route(fan, channel).json()
    assert after["expiresIn"] - before["expiresIn"] in (59, 60, 61)
    expected = int(call_row(call_id).connected_at.timestamp()) + 120 + agora.GRACE_S  # type: ignore[union-attr]
    assert set(privileges(after["token"]).values()) == {expected}
    assert after["role"] == "host" and after["rtcToken"] == after["token"] and after["channel"] == channel


def test_no_token_once_the_paid_time_ran_out_or_the_call_ended(fan: Person, creator: Person) -> None:
    now = real_now()
    call_id = connect(fan, creator, now - seconds(95))  # paid until now-35: the grace ended at now-5
    channel = call_row(call_id).channel
    r = token_route(fan, channel)
    assert r.status_code == 402 and r.json()["code"] == "INSUFFICIENT_TOKENS"
    in_tx(calls.end, as_user(fan), call_id, now)
    r = token_route(creator, channel)
    assert r.status_code == 409 and r.json()["code"] == "CALL_NOT_ACTIVE"


def test_outsiders_get_404_for_a_calls_token(fan: Person, creator: Person, outsider: Person) -> None:
    call_id = connect(fan, creator, real_now())
    channel = call_row(call_id).channel
    assert token_route(fan, channel).status_code == 200
    assert token_route(creator, channel).status_code == 200
    r = token_route(outsider, channel)
    assert r.status_code == 404 and r.json()["code"] == "CHANNEL_NOT_FOUND"
    assert token_route(outsider, "no-such-channel").status_code == 404
    assert client("agora/token.py").get(f"/api/agora/token?channel={channel}").status_code == 401


def _live_stream(creator: Person) -> str:
    channel = f"stream-{creator.id.hex}"
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO streams (creator_id, channel, title) VALUES (%(c)s, %(ch)s, 'Live now')",
            {"c": creator.id, "ch": channel},
        )
    return channel


def test_stream_host_gets_a_host_token_and_viewers_an_audience_one(creator: Person, outsider: Person) -> None:
    channel = _live_stream(creator)
    host = token_route(creator, channel)
    assert host.status_code == 200 and host.json()["role"] == "host"
    assert set(privileges(host.json()["token"])) == {1, 2, 3, 4}
    viewer = token_route(outsider, channel)
    assert viewer.status_code == 200 and viewer.json()["role"] == "audience"
    assert set(privileges(viewer.json()["token"])) == {1}
    assert 3590 <= viewer.json()["expiresIn"] <= 3600
    refused = token_route(outsider, channel, "host")
    assert refused.status_code == 403 and refused.json()["code"] == "NOT_STREAM_HOST"
    with db.transaction() as conn:
        conn.execute(
            "UPDATE streams SET status = 'ended', ended_at = now(), end_reason = 'host' WHERE channel = %(c)s",
            {"c": channel},
        )
    assert token_route(outsider, channel).status_code == 404


# --- the kicking rule -----------------------------------------------------------------------------------------


class _AgoraStandIn(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.seen.append(
            {
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "body": json.loads(self.rfile.read(length)),
            }
        )
        payload = json.dumps({"status": "success", "id": 1953}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def agora_stand_in() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local stand-in for Agora's REST API that records kicking rules and accepts them."""
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (_AgoraStandIn,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def hanging_agora() -> Iterator[tuple[str, list[float]]]:
    """A port that accepts connections and never answers; yields its URL and when each connection arrived."""
    arrivals: list[float] = []
    stop = threading.Event()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        s.settimeout(0.05)
        held: list[socket.socket] = []

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = s.accept()
                except TimeoutError:
                    continue
                arrivals.append(time.monotonic())
                held.append(conn)

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{s.getsockname()[1]}", arrivals
        finally:
            stop.set()
            thread.join(5)
            for conn in held:
                conn.close()


def _run_out_of_funds(make_user: MakeUser, creator: Person) -> tuple[UUID, Person]:
    """A call whose fan can pay minute 1 only; minute 2's job ends it for lack of funds."""
    fan = make_user(balance=10)
    now = real_now()
    call_id = connect(fan, creator, now - seconds(61))
    both_beat(fan, creator, call_id, now - seconds(30))
    return call_id, fan


def test_a_fan_out_of_funds_is_kicked_from_the_channel_after_the_commit(
    make_user: MakeUser, creator: Person, set_env: SetEnv
) -> None:
    with agora_stand_in() as (url, seen):
        set_env(AGORA_REST_BASE=url, **CUSTOMER)
        call_id, fan = _run_out_of_funds(make_user, creator)
        result = in_tx(calls.bill_call_minute, call_id, 2, real_now())
    assert result.status == "ended"
    with db.transaction() as conn:
        uid = agora.uid_for(conn, fan.id)
    [rule] = seen
    assert rule["path"] == "/dev/v1/kicking-rule"
    assert rule["auth"] == "Basic " + base64.b64encode(b"cust-id:cust-secret").decode()
    assert rule["body"] == {
        "appid": "970CA35de60c44645bbae8a215061b33",
        "cname": call_row(call_id).channel,
        "uid": uid,
        "time_in_seconds": agora.KICK_BAN_S,
        "privileges": ["join_channel"],
    }


def test_a_hanging_agora_is_contacted_only_after_the_billing_committed(
    make_user: MakeUser, creator: Person, set_env: SetEnv
) -> None:
    with hanging_agora() as (url, arrivals):
        set_env(AGORA_REST_BASE=url, AGORA_TIMEOUT_S="0.5", **CUSTOMER)
        call_id, _ = _run_out_of_funds(make_user, creator)
        states: list[str] = []

        def watch() -> None:
            deadline = time.monotonic() + 5
            while not arrivals and time.monotonic() < deadline:
                time.sleep(0.005)
            states.append(call_row(call_id).state)  # what another connection sees while Agora hangs

        watcher = threading.Thread(target=watch)
        watcher.start()
        result = in_tx(calls.bill_call_minute, call_id, 2, real_now())  # the kick runs as it commits
        watcher.join(10)
    assert result.status == "ended"
    assert arrivals and states == ["ended"]


def test_breaker_opens_on_a_hanging_agora_and_then_costs_nothing(set_env: SetEnv) -> None:
    with hanging_agora() as (url, arrivals):
        set_env(AGORA_REST_BASE=url, AGORA_TIMEOUT_S="0.3", **CUSTOMER)
        for _ in range(agora.breaker.threshold):
            started = time.monotonic()
            assert agora.kick_from_channel("call-x", 12345) is False
            assert 0.25 <= time.monotonic() - started < 2.0  # bounded by the timeout
        assert agora.breaker.is_open
        started = time.monotonic()
        assert agora.kick_from_channel("call-x", 12345) is False
        assert time.monotonic() - started < 0.05
        assert len(arrivals) == agora.breaker.threshold


def test_breaker_lets_one_trial_through_after_the_cooldown_and_closes_on_success() -> None:
    clock = [0.0]
    breaker = agora.CircuitBreaker(threshold=2, cooldown_s=10, clock=lambda: clock[0])
    for _ in range(2):
        assert breaker.allow()
        breaker.record(False)
    assert not breaker.allow()
    clock[0] = 10.0
    assert breaker.allow() and not breaker.allow()  # one trial, the rest wait
    breaker.record(True)
    assert breaker.allow() and not breaker.is_open


def test_without_agora_credentials_the_kick_is_skipped_quietly() -> None:
    assert agora.kick_from_channel("call-x", 1) is False
    assert not agora.breaker.is_open
