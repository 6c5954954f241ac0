"""The creator directory, public creator pages, presence, rates, follows, stats and creator applications."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import pytest

from lib import db, presence
from tests.conftest import DEAD, MakeUser
from tests.identity.conftest import repoint
from tests.support import functions

DIRECTORY = "users/creators.py"
PUBLIC = "users/public/creator/[username].py"
HEARTBEAT = "users/heartbeat.py"
RATES = "creators/rates.py"
FOLLOW = "creators/[id]/follow.py"
UNFOLLOW = "creators/[id]/unfollow.py"
STATS = "creators/stats.py"
APPLY = "users/apply-creator.py"


def _sql(query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with db.transaction() as conn:
        cur = conn.execute(query, params)
        return [dict(r) for r in cur.fetchall()] if cur.description else []


def _go_live(creator_id: uuid.UUID, title: str = "Live now", viewers: int = 3) -> None:
    _sql(
        """INSERT INTO streams (creator_id, channel, title, viewer_count, peak_viewers)
           VALUES (%(c)s, %(ch)s, %(t)s, %(v)s, %(v)s)""",
        {"c": creator_id, "ch": f"stream_{uuid.uuid4().hex[:12]}", "t": title, "v": viewers},
    )


def _directory(query: str = "") -> dict[str, Any]:
    r = functions.client(DIRECTORY).get(f"/api/users/creators{query}")
    assert r.status_code == 200, r.text
    return r.json()


# ---- directory ---------------------------------------------------------------------------------------------


def test_directory_lists_only_creators_with_the_contract_fields(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    make_user()  # a fan
    body = _directory()
    assert body["total"] == 1 and body["hasMore"] is False and body["page"] == 1 and body["limit"] == 20
    (entry,) = body["creators"]
    assert set(entry) == {
        "id", "username", "display_name", "profile_pic_url", "bio", "creator_type", "video_price", "voice_price",
        "is_online", "is_live", "languages", "follower_count", "is_following",
    }  # fmt: skip
    assert entry["id"] == str(creator.id) and entry["is_online"] is False and entry["is_live"] is False


def test_directory_pages_are_stable_and_cover_everyone_once(make_user: MakeUser) -> None:
    ids = {str(make_user(role="creator").id) for _ in range(7)}
    _sql("UPDATE users SET created_at = '2024-01-01T00:00:00Z'")  # ties everywhere: the id must break them
    seen: list[str] = []
    for page in (1, 2, 3):
        body = _directory(f"?page={page}&limit=3")
        seen += [c["id"] for c in body["creators"]]
        assert body["total"] == 7 and body["hasMore"] == (page < 3)
    assert len(seen) == 7 and set(seen) == ids
    assert [c["id"] for c in _directory("?offset=3&limit=3")["creators"]] == seen[3:6]
    assert _directory("?limit=3&page=1")["creators"] == _directory("?limit=3&page=1")["creators"]


@pytest.mark.parametrize("query", ["?limit=101", "?limit=0", "?page=0", "?offset=-1", "?sortBy=nonsense"])
def test_directory_refuses_bad_paging_and_sorting(clean: None, query: str) -> None:
    assert functions.client(DIRECTORY).get(f"/api/users/creators{query}").status_code == 422


def test_directory_filters_by_category_case_insensitively(make_user: MakeUser) -> None:
    a, b = make_user(role="creator"), make_user(role="creator")
    _sql("UPDATE users SET creator_type = 'Music' WHERE id = %(id)s", {"id": a.id})
    _sql("UPDATE users SET creator_type = 'Fitness' WHERE id = %(id)s", {"id": b.id})
    assert [c["id"] for c in _directory("?category=music")["creators"]] == [str(a.id)]
    assert _directory("?category=all")["total"] == 2


def test_directory_sorts_by_price_and_popularity(make_user: MakeUser) -> None:
    cheap = make_user(role="creator", video_price=5)
    dear = make_user(role="creator", video_price=50)
    mid = make_user(role="creator", video_price=20)
    assert [c["id"] for c in _directory("?sortBy=price-low")["creators"]] == [
        str(cheap.id),
        str(mid.id),
        str(dear.id),
    ]
    assert [c["id"] for c in _directory("?sortBy=price_high")["creators"]] == [
        str(dear.id),
        str(mid.id),
        str(cheap.id),
    ]
    for _ in range(2):
        fan = make_user()
        _sql(
            "INSERT INTO follows (follower_id, creator_id) VALUES (%(f)s, %(c)s)", {"f": fan.id, "c": mid.id}
        )
    assert _directory("?sortBy=popular")["creators"][0]["id"] == str(mid.id)


def test_is_live_comes_from_live_streams(make_user: MakeUser) -> None:
    live, idle = make_user(role="creator"), make_user(role="creator")
    _go_live(live.id)
    flags = {c["id"]: c["is_live"] for c in _directory()["creators"]}
    assert flags == {str(live.id): True, str(idle.id): False}


def test_an_authenticated_request_marks_a_creator_online(make_user: MakeUser) -> None:
    online, offline = make_user(role="creator"), make_user(role="creator")
    r = functions.client(RATES).get("/api/creators/rates", headers=online.headers)  # any authenticated call
    assert r.status_code == 200, r.text
    flags = {c["id"]: c["is_online"] for c in _directory()["creators"]}
    assert flags == {str(online.id): True, str(offline.id): False}
    assert [c["id"] for c in _directory("?onlineOnly=true")["creators"]] == [str(online.id)]
    assert _directory("?onlineOnly=true")["total"] == 1
    assert _directory("?sortBy=online")["creators"][0]["id"] == str(online.id)


def test_heartbeat_keeps_me_online_with_a_ttl(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    r = functions.client(HEARTBEAT).post("/api/users/heartbeat", headers=creator.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"online": True, "ttlSeconds": presence.ONLINE_TTL_S}
    from lib import redis

    ttl = redis.get_redis().ttl(redis.key("presence", "user", creator.id))
    assert 0 < ttl <= presence.ONLINE_TTL_S


def test_a_stale_heartbeat_is_offline(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    assert presence.touch(creator.id, creator=True)
    from lib import redis

    client = redis.get_redis()
    client.delete(redis.key("presence", "user", creator.id))  # the TTL ran out
    client.zadd(redis.key("presence", "creators"), {str(creator.id): time.time() - presence.ONLINE_TTL_S - 5})
    assert _directory()["creators"][0]["is_online"] is False
    assert _directory("?onlineOnly=true")["total"] == 0


def test_directory_still_answers_when_redis_is_down(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    _go_live(creator.id)
    gateway = os.environ["UPSTASH_REDIS_REST_URL"]
    repoint(UPSTASH_REDIS_REST_URL=DEAD)
    try:
        started = time.monotonic()
        body = _directory("?onlineOnly=false")
        assert body["creators"][0]["is_online"] is False and body["creators"][0]["is_live"] is True
        assert _directory("?onlineOnly=true")["creators"] == []
        public = functions.client(PUBLIC).get(f"/api/users/public/creator/{creator.username}")
        assert public.status_code == 200 and public.json()["creator"]["isOnline"] is False
        assert time.monotonic() - started < 5
    finally:
        repoint(UPSTASH_REDIS_REST_URL=gateway)


# ---- public creator page -----------------------------------------------------------------------------------


def test_public_creator_page_in_camel_case(make_user: MakeUser) -> None:
    creator = make_user(role="creator", username="star_one")
    fan = make_user()
    _sql("UPDATE users SET bio = 'hi', message_price = 3 WHERE id = %(id)s", {"id": creator.id})
    _sql(
        "INSERT INTO follows (follower_id, creator_id) VALUES (%(f)s, %(c)s)", {"f": fan.id, "c": creator.id}
    )
    _go_live(creator.id, title="Morning show", viewers=12)
    r = functions.client(PUBLIC).get("/api/v1/users/public/creator/STAR_ONE", headers=fan.headers)
    assert r.status_code == 200, r.text
    assert r.json()["creator"] == {
        "id": str(creator.id),
        "username": "star_one",
        "display_name": "star_one",
        "bio": "hi",
        "profilePicUrl": None,
        "videoPrice": 10,
        "voicePrice": 6,
        "messagePrice": 3,
        "isOnline": False,
        "isLiveStreaming": True,
        "streamTitle": "Morning show",
        "viewerCount": 12,
        "followerCount": 1,
        "isFollowing": True,
        "banner_url": None,
        "interests": [],
        "streamStartTime": r.json()["creator"]["streamStartTime"],
        "isPaidStream": False,
        "tokenPrice": 0,
        "hasAccess": True,
    }
    assert isinstance(r.json()["creator"]["streamStartTime"], str)
    anonymous = functions.client(PUBLIC).get("/api/users/public/creator/star_one").json()["creator"]
    assert anonymous["isFollowing"] is False and "email" not in anonymous


def test_public_page_of_a_fan_or_nobody_is_404(make_user: MakeUser) -> None:
    fan = make_user(username="just_a_fan")
    client = functions.client(PUBLIC)
    assert client.get(f"/api/users/public/creator/{fan.username}").status_code == 404
    assert client.get("/api/users/public/creator/nobody_here").status_code == 404


# ---- rates -------------------------------------------------------------------------------------------------


def test_creator_reads_and_updates_rates(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    client = functions.client(RATES)
    unset = {"message": None, "stream": None, "textMessage": None, "imageMessage": None, "audioMessage": None,
             "videoMessage": None}  # fmt: skip
    assert client.get("/api/creators/rates", headers=creator.headers).json() == {
        "rates": {"videoCall": 10, "voiceCall": 6, **unset}
    }
    r = client.post(
        "/api/creators/rates",
        headers=creator.headers,
        json={"rates": {"videoCall": 25, "textMessage": 2, "imageMessage": 4, "pictures": 1}},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "rates": {
            "videoCall": 25,
            "voiceCall": 6,
            **unset,
            "message": 2,
            "textMessage": 2,
            "imageMessage": 4,
        },
        "ignored": ["pictures"],
    }


@pytest.mark.parametrize(
    "rates",
    [
        {"videoCall": 0},
        {"videoCall": 10_001},
        {"videoCall": 2.5},
        {"videoCall": "20"},
        {"videoCall": True},
        {"videoCall": None},
        {"videoCall": -5},
        {},
        {"pictures": 3},
        {"imageMessage": -1},
        {"audioMessage": 1.5},
    ],
)
def test_bad_rates_are_422_and_change_nothing(make_user: MakeUser, rates: dict[str, Any]) -> None:
    creator = make_user(role="creator")
    r = functions.client(RATES).post("/api/creators/rates", headers=creator.headers, json={"rates": rates})
    assert r.status_code == 422, r.text
    assert _sql("SELECT video_price FROM users WHERE id = %(id)s", {"id": creator.id}) == [
        {"video_price": 10}
    ]


def test_rates_body_refuses_other_top_level_keys(make_user: MakeUser) -> None:
    creator, other = make_user(role="creator"), make_user(role="creator")
    r = functions.client(RATES).post(
        "/api/creators/rates",
        headers=creator.headers,
        json={"rates": {"videoCall": 99}, "creatorId": str(other.id)},
    )
    assert r.status_code == 422
    assert _sql("SELECT video_price FROM users WHERE id = %(id)s", {"id": other.id}) == [{"video_price": 10}]


# ---- follows -----------------------------------------------------------------------------------------------


def test_follow_and_unfollow_are_idempotent_and_counted(make_user: MakeUser) -> None:
    creator, fan = make_user(role="creator"), make_user()
    follow, unfollow = functions.client(FOLLOW), functions.client(UNFOLLOW)
    for _ in range(2):
        r = follow.post(f"/api/creators/{creator.id}/follow", headers=fan.headers)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "following": True,
            "creatorId": str(creator.id),
            "followersCount": 1,
            "subscribersCount": 0,
        }
    stats = functions.client(STATS).get("/api/creators/stats", headers=creator.headers)
    counts = {"success": True, "followersCount": 1, "subscribersCount": 0}
    assert stats.json() == {**counts, "data": counts}
    for _ in range(2):
        r = unfollow.delete(f"/api/v1/creators/{creator.id}/unfollow", headers=fan.headers)
        assert r.status_code == 200, r.text
        assert r.json()["following"] is False and r.json()["followersCount"] == 0


def test_follow_via_vercel_destination_path(make_user: MakeUser) -> None:
    creator, fan = make_user(role="creator"), make_user()
    r = functions.client(FOLLOW).post(f"/api/creators/[id]/follow?id={creator.id}", headers=fan.headers)
    assert r.status_code == 200, r.text


def test_following_a_fan_an_unknown_id_or_yourself_is_refused_without_a_row(make_user: MakeUser) -> None:
    creator, fan, other_fan = make_user(role="creator"), make_user(), make_user()
    client = functions.client(FOLLOW)
    assert client.post(f"/api/creators/{other_fan.id}/follow", headers=fan.headers).status_code == 404
    assert client.post(f"/api/creators/{uuid.uuid4()}/follow", headers=fan.headers).status_code == 404
    assert client.post(f"/api/creators/{creator.id}/follow", headers=creator.headers).status_code == 400
    assert client.post("/api/creators/not-a-uuid/follow", headers=fan.headers).status_code == 422
    assert _sql("SELECT * FROM follows") == []


def test_unfollowing_an_unknown_id_is_404(make_user: MakeUser) -> None:
    fan = make_user()
    assert (
        functions.client(UNFOLLOW)
        .delete(f"/api/creators/{uuid.uuid4()}/unfollow", headers=fan.headers)
        .status_code
        == 404
    )


# ---- creator applications ----------------------------------------------------------------------------------


def test_apply_creator_records_one_pending_application(make_user: MakeUser) -> None:
    fan = make_user()
    client = functions.client(APPLY)
    body = {"bio": "I sing", "creatorType": "Music", "socialLinks": {"instagram": "@me"}, "is_creator": True}
    r = client.post("/api/users/apply-creator", headers=fan.headers, json=body)
    assert r.status_code == 201, r.text
    application = r.json()["application"]
    assert application["status"] == "pending" and application["id"] and application["submittedAt"]
    again = client.post("/api/users/apply-creator", headers=fan.headers, json=body)
    assert again.status_code == 409 and again.json()["code"] == "APPLICATION_PENDING"
    assert again.json()["applicationId"] == application["id"]
    rows = _sql("SELECT category, social_links, status FROM creator_applications")
    assert rows == [{"category": "Music", "social_links": {"instagram": "@me"}, "status": "pending"}]
    assert _sql("SELECT is_creator, role FROM users WHERE id = %(id)s", {"id": fan.id}) == [
        {"is_creator": False, "role": "fan"}
    ]


def test_a_creator_cannot_apply_again(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    r = functions.client(APPLY).post("/api/users/apply-creator", headers=creator.headers, json={})
    assert r.status_code == 409 and r.json()["code"] == "ALREADY_CREATOR"


def test_creator_only_routes_refuse_fans(make_user: MakeUser) -> None:
    fan = make_user()
    for path, method in ((RATES, "get"), (RATES, "post"), (STATS, "get")):
        url = "/api/creators/rates" if path == RATES else "/api/creators/stats"
        kwargs: dict[str, Any] = {"json": {"rates": {"videoCall": 5}}} if method == "post" else {}
        r = getattr(functions.client(path), method)(url, headers=fan.headers, **kwargs)
        assert r.status_code == 403 and r.json()["code"] == "CREATOR_ONLY", (path, method)
    assert _sql("SELECT video_price FROM users WHERE id = %(id)s", {"id": fan.id}) == [{"video_price": None}]
