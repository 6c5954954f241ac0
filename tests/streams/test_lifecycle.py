"""Going live, joining and ending: one live stream per creator, host-only end, shapes as API.md has them."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta

import psycopg
import pytest

from lib import agora, db, streams
from lib.streams.models import GoLive
from tests.conftest import MakeUser
from tests.streams.helpers import (
    T0,
    as_user,
    end_client,
    go_live,
    go_live_client,
    in_transaction,
    join_client,
    outbox,
    stream_row,
)


def test_go_live_answers_the_stream_and_a_host_token(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    body = go_live(creator, "  Morning show  ", category="music", tags=["x"], privacy="public")
    stream, token = body["stream"], body["agora"]
    assert set(stream) == {"id", "channel", "title", "status", "startedAt"}
    assert stream["title"] == "Morning show" and stream["status"] == "live"
    assert set(token) == {"appId", "token", "channel", "uid", "role", "expiresAt"}
    assert token["role"] == "host" and token["channel"] == stream["channel"]
    assert token["appId"] == agora.app_id() and token["token"].startswith("006" + agora.app_id())
    with db.transaction() as conn:
        assert token["uid"] == agora.uid_for(conn, creator.id)
    started = datetime.fromisoformat(stream["startedAt"])
    expires = datetime.fromisoformat(token["expiresAt"])
    assert abs((expires - started).total_seconds() - agora.STREAM_TOKEN_TTL_S) <= 1
    row = stream_row(stream["id"])
    assert row["creator_id"] == creator.id and row["category"] == "music"


def test_second_go_live_is_refused_with_the_live_stream_id(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    first = go_live(creator)["stream"]
    r = go_live_client().post("/api/v1/streaming/go-live", json={"title": "again"}, headers=creator.headers)
    assert r.status_code == 400
    problem = r.json()
    assert problem["code"] == "ALREADY_LIVE"
    assert problem["streamId"] == first["id"] and problem["channel"] == first["channel"]


def test_concurrent_go_lives_leave_exactly_one_live_stream(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    client = go_live_client()
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def attempt() -> None:
        barrier.wait(5)
        r = client.post("/api/streaming/go-live", json={"title": "race"}, headers=creator.headers)
        statuses.append(r.status_code)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == [200] + [400] * 5
    with db.transaction() as conn:
        live = conn.execute("SELECT count(*) AS n FROM streams WHERE status = 'live'").fetchone()
    assert live is not None and live["n"] == 1


def test_the_database_itself_refuses_a_second_live_stream(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    go_live(creator)
    with pytest.raises(psycopg.errors.UniqueViolation, match="streams_one_live_per_creator"):  # noqa: SIM117
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO streams (creator_id, channel, title) VALUES (%(c)s, 'raw-insert', 'sneaky')",
                {"c": creator.id},
            )


def test_fan_cannot_go_live(make_user: MakeUser) -> None:
    fan = make_user(role="fan")
    r = go_live_client().post("/api/streaming/go-live", json={"title": "hi"}, headers=fan.headers)
    assert r.status_code == 403
    assert r.json()["code"] == "CREATOR_ONLY"
    assert outbox("stream-ended") == []


@pytest.mark.parametrize("body", [{}, {"title": "   "}, {"title": "x" * 101}, {"title": 5}])
def test_go_live_without_a_usable_title_is_422(make_user: MakeUser, body: dict[str, object]) -> None:
    creator = make_user(role="creator")
    r = go_live_client().post("/api/streaming/go-live", json=body, headers=creator.headers)
    assert r.status_code == 422, r.text


def test_go_live_needs_a_token() -> None:
    r = go_live_client().post("/api/streaming/go-live", json={"title": "hi"})
    assert r.status_code == 401


def test_viewer_and_other_creator_cannot_end_the_stream(make_user: MakeUser) -> None:
    host, fan, rival = make_user(role="creator"), make_user(), make_user(role="creator")
    stream_id = go_live(host)["stream"]["id"]
    for intruder in (fan, rival):
        r = end_client().post(f"/api/streaming/end-stream/{stream_id}", headers=intruder.headers)
        assert r.status_code == 403
        assert r.json()["code"] == "NOT_STREAM_HOST"
    assert stream_row(stream_id)["status"] == "live"
    assert outbox("stream-ended") == []


def test_end_of_an_unknown_stream_is_404(make_user: MakeUser) -> None:
    host = make_user(role="creator")
    r = end_client().post(f"/api/streaming/end-stream/{uuid.uuid4()}", headers=host.headers)
    assert r.status_code == 404 and r.json()["code"] == "STREAM_NOT_FOUND"


def test_end_reports_duration_peak_and_tips_and_publishes_stream_ended_once(make_user: MakeUser) -> None:
    host, fans = make_user(role="creator"), [make_user() for _ in range(3)]
    live = in_transaction(streams.go_live, as_user(host), GoLive(title="Show"), now=T0)
    stream_id, channel = live.stream.id, live.stream.channel
    for n, fan in enumerate(fans):
        in_transaction(streams.join, channel, as_user(fan), now=T0 + timedelta(seconds=n))
    with db.transaction() as conn:
        found = streams.live_stream_by_channel(conn, channel)
        assert found is not None and found["id"] == stream_id
        streams.record_tip(conn, stream_id, 25)
        streams.record_tip(conn, stream_id, 15)

    ended = in_transaction(streams.end_stream, stream_id, as_user(host), now=T0 + timedelta(seconds=754.6))
    assert ended.model_dump(mode="json") == {
        "stream": {"id": str(stream_id), "durationSeconds": 754, "peakViewers": 3, "tipsTokens": 40}
    }
    assert outbox("stream-ended") == [
        {
            "channel": f"private-stream-{channel}",
            "payload": {"streamId": str(stream_id), "channel": channel, "creatorId": str(host.id)},
        }
    ]
    # Ending again (a retried request) answers the same summary and announces nothing new.
    again = end_client().post(f"/api/streaming/end-stream/{stream_id}", headers=host.headers)
    assert again.status_code == 200 and again.json() == ended.model_dump(mode="json")
    assert len(outbox("stream-ended")) == 1
    row = stream_row(stream_id)
    assert row["status"] == "ended" and row["end_reason"] == "host" and row["viewer_count"] == 0
    with db.transaction() as conn:
        assert streams.live_stream_by_channel(conn, channel) is None
        assert not streams.is_live(conn, host.id)


# What GoLivePage.js posts (streamConfig), keys and types as the page builds them.
GO_LIVE_BODY = {
    "title": "Cooking",
    "category": "Food",
    "description": "Pasta from scratch",
    "shoppingEnabled": False,
    "selectedProducts": [],
    "audienceControl": None,
    "streamGoal": None,
    "tags": ["pasta"],
    "privacy": "public",
    "isTestStream": False,
}


def test_join_by_channel_id_or_username_answers_every_field_streampage_reads(make_user: MakeUser) -> None:
    host, fan = make_user(role="creator"), make_user()
    stream = go_live(host, **GO_LIVE_BODY)["stream"]
    with db.transaction() as conn:
        fan_uid = agora.uid_for(conn, fan.id)
    # GoLivePage navigates to /stream/{channel}; profiles and explore to /stream/{creator.username}.
    for ref in (stream["channel"], stream["id"], host.username, host.username.upper()):
        r = join_client().get(f"/api/v1/streaming/stream/{ref}", headers=fan.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"stream", "agoraToken", "chatToken", "uid"}
        # StreamPage.js:73-80 reads these.
        page = body["stream"]
        assert page["channel_name"] == stream["channel"] and isinstance(page["channel_name"], str)
        assert (page["title"], page["category"], page["description"]) == (
            "Cooking",
            "Food",
            "Pasta from scratch",
        )
        assert page["creator_id"] == str(host.id)
        assert isinstance(body["agoraToken"], str) and body["agoraToken"].startswith("006")
        assert body["chatToken"] is None  # stream chat is Supabase Realtime: no chat token
        assert isinstance(body["uid"], int) and body["uid"] == fan_uid
        assert page == {
            "id": stream["id"],
            "channel": stream["channel"],
            "channel_name": stream["channel"],
            "title": "Cooking",
            "category": "Food",
            "description": "Pasta from scratch",
            "creator_id": str(host.id),
            "creator_username": host.username,
            "status": "live",
            "viewer_count": page["viewer_count"],
            "started_at": page["started_at"],
        }
        assert isinstance(page["viewer_count"], int)


def test_join_by_username_of_a_creator_not_live_is_stream_not_live(make_user: MakeUser) -> None:
    host, idle, fan = make_user(role="creator"), make_user(role="creator"), make_user()
    stream = go_live(host)["stream"]
    end_client().post(f"/api/streaming/end-stream/{stream['id']}", headers=host.headers)
    r = join_client().get(f"/api/streaming/stream/{host.username}", headers=fan.headers)
    assert r.status_code == 400 and r.json()["code"] == "STREAM_NOT_LIVE"
    r = join_client().get(f"/api/streaming/stream/{idle.username}", headers=fan.headers)
    assert r.status_code == 404 and r.json()["code"] == "STREAM_NOT_FOUND"


def test_join_after_the_end_is_stream_not_live(make_user: MakeUser) -> None:
    host, fan = make_user(role="creator"), make_user()
    stream = go_live(host)["stream"]
    assert (
        end_client().post(f"/api/streaming/end-stream/{stream['id']}", headers=host.headers).status_code
        == 200
    )
    r = join_client().get(f"/api/streaming/stream/{stream['channel']}", headers=fan.headers)
    assert r.status_code == 400
    assert r.json()["code"] == "STREAM_NOT_LIVE" and r.json()["streamId"] == stream["id"]


def test_join_of_an_unknown_stream_is_404(make_user: MakeUser) -> None:
    fan = make_user()
    for ref in ("stream-nope", str(uuid.uuid4()), "x" * 300):
        r = join_client().get(f"/api/streaming/stream/{ref}", headers=fan.headers)
        assert r.status_code == 404 and r.json()["code"] == "STREAM_NOT_FOUND"


def test_a_creator_can_go_live_again_after_ending(make_user: MakeUser) -> None:
    host = make_user(role="creator")
    first = go_live(host)["stream"]
    end_client().post(f"/api/streaming/end-stream/{first['id']}", headers=host.headers)
    second = go_live(host, "Part two")["stream"]
    assert second["id"] != first["id"] and second["channel"] != first["channel"]
