"""Viewer counts from Redis heartbeats: joins, leaves, silent drops, a throttled viewer-count, Redis down."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any
from uuid import UUID

from lib import streams
from lib.streams import viewers
from lib.streams.models import GoLive, GoLiveAnswer
from tests.conftest import MakeUser
from tests.conftest import TestUser as Person
from tests.streams.helpers import (
    T0,
    as_user,
    directory_client,
    go_live,
    heartbeat_client,
    in_transaction,
    join_client,
    leave_client,
    outbox,
    redis_down,
    stream_row,
)

TTL = viewers.VIEWER_TTL_S


def start(host: Person) -> GoLiveAnswer:
    answer: GoLiveAnswer = in_transaction(streams.go_live, as_user(host), GoLive(title="Live"), now=T0)
    return answer


def beat(channel: str, who: Person, after_s: float) -> Any:
    """One heartbeat from `who`, `after_s` seconds after T0."""
    return in_transaction(streams.heartbeat, channel, as_user(who), now=T0 + timedelta(seconds=after_s))


def counts() -> list[int]:
    return [e["payload"]["count"] for e in outbox("viewer-count")]


def test_joins_count_each_viewer_once_and_leaves_count_down(make_user: MakeUser) -> None:
    host, alice, bob = make_user(role="creator"), make_user(), make_user()
    stream = go_live(host)["stream"]
    path = f"/api/streaming/stream/{stream['channel']}"
    for who in (alice, bob, alice):  # alice's second join (a reload) is the same viewer
        assert join_client().get(path, headers=who.headers).status_code == 200
    assert join_client().get(path, headers=host.headers).status_code == 200  # the host is not audience
    r = heartbeat_client().post(path + "/heartbeat", headers=bob.headers)
    assert r.status_code == 200
    assert r.json() == {
        "stream": {"id": stream["id"], "status": "live", "viewerCount": 2},
        "role": "viewer",
        "nextHeartbeatIn": streams.VIEWER_HEARTBEAT_S,
    }
    left = leave_client().post(path + "/leave", headers=alice.headers)
    assert left.status_code == 200 and left.json()["stream"]["viewerCount"] == 1
    again = leave_client().post(path + "/leave", headers=alice.headers)  # leaving twice changes nothing
    assert again.json()["stream"]["viewerCount"] == 1
    assert stream_row(stream["id"])["peak_viewers"] == 2


def test_silent_viewers_stop_counting_after_the_ttl(make_user: MakeUser) -> None:
    host, alice, bob, carol = make_user(role="creator"), make_user(), make_user(), make_user()
    channel = start(host).stream.channel
    for who in (alice, bob, carol):
        in_transaction(streams.join, channel, as_user(who), now=T0)
    # alice keeps beating; bob's phone sleeps; carol's tab dies. Nobody calls leave.
    for second in range(15, 61, 15):
        assert beat(channel, alice, second).stream.viewerCount == (3 if second < TTL else 1)
    assert beat(channel, host, 61).model_dump()["stream"]["viewerCount"] == 1


def test_host_heartbeat_prunes_and_stores_the_count_when_no_viewer_beats(make_user: MakeUser) -> None:
    host, fan = make_user(role="creator"), make_user()
    live = start(host)
    in_transaction(streams.join, live.stream.channel, as_user(fan), now=T0)
    answer = beat(live.stream.channel, host, TTL + 1)
    assert answer.role == "host" and answer.nextHeartbeatIn == streams.HOST_HEARTBEAT_S
    assert answer.stream.viewerCount == 0
    time.sleep(1.05)  # past the join's announcement second
    beat(live.stream.channel, host, TTL + 2)
    row = stream_row(live.stream.id)
    assert row["viewer_count"] == 0 and row["peak_viewers"] == 1
    assert row["last_heartbeat_at"] == T0 + timedelta(seconds=TTL + 2)
    assert counts()[-1] == 0


def test_viewer_count_is_sent_at_most_once_a_second_and_converges(make_user: MakeUser) -> None:
    host = make_user(role="creator")
    fans = [make_user() for _ in range(5)]
    live = start(host)
    channel = live.stream.channel
    started = time.monotonic()
    for fan in fans:
        in_transaction(streams.join, channel, as_user(fan), now=T0)
    burst_took = time.monotonic() - started
    if burst_took < 1.0:  # the burst fit in one throttle window: one event for five joins
        assert counts() == [1]
    assert stream_row(live.stream.id)["peak_viewers"] == 5  # the peak is never throttled
    time.sleep(1.05)
    beat(channel, fans[0], 1)  # the next heartbeat after the window announces the true count
    assert counts()[-1] == 5
    assert stream_row(live.stream.id)["viewer_count"] == 5
    assert {e["channel"] for e in outbox("viewer-count")} == {f"private-stream-{channel}"}
    sent = len(counts())
    time.sleep(1.05)
    beat(channel, fans[0], 2)  # nothing changed: nothing sent, even with the window open
    assert len(counts()) == sent


def test_heartbeat_after_the_end_is_stream_not_live(make_user: MakeUser) -> None:
    host, fan = make_user(role="creator"), make_user()
    stream = go_live(host)["stream"]
    in_transaction(streams.end_stream, stream["id"], as_user(host))
    path = f"/api/streaming/stream/{stream['id']}"
    for who in (host, fan):
        r = heartbeat_client().post(path + "/heartbeat", headers=who.headers)
        assert r.status_code == 400 and r.json()["code"] == "STREAM_NOT_LIVE"
    left = leave_client().post(path + "/leave", headers=fan.headers)
    assert left.status_code == 200 and left.json()["stream"] == {
        "id": stream["id"],
        "status": "ended",
        "viewerCount": 0,
    }


def test_redis_down_join_and_directory_still_work_with_the_stored_count(make_user: MakeUser) -> None:
    host, alice, bob = make_user(role="creator"), make_user(), make_user()
    stream = go_live(host)["stream"]
    path = f"/api/streaming/stream/{stream['channel']}"
    assert join_client().get(path, headers=alice.headers).status_code == 200
    assert stream_row(stream["id"])["viewer_count"] == 1
    with redis_down():
        t0 = time.monotonic()
        joined = join_client().get(path, headers=bob.headers)
        assert joined.status_code == 200 and joined.json()["agoraToken"]
        beat = heartbeat_client().post(path + "/heartbeat", headers=bob.headers)
        assert beat.status_code == 200 and beat.json()["stream"]["viewerCount"] == 1
        listed = directory_client().get("/api/streaming/public/streams/live")
        assert listed.status_code == 200
        assert [(s["id"], s["viewer_count"]) for s in listed.json()["streams"]] == [(stream["id"], 1)]
        assert time.monotonic() - t0 < 3  # a dead Redis costs a failed call, not a hang
    assert (
        viewers.count(UUID(stream["id"]), time.time()) == 1
    )  # Redis back: alice still counts, bob never did
