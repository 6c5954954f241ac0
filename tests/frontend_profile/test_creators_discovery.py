"""Creators and discovery rows (#10, #13-#26): exact requests, fields read, search quality and no private data."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lib import db
from lib.creators import discovery as search_module
from tests.conftest import MakeUser
from tests.frontend_profile.conftest import private_keys, sql
from tests.support import functions

PUBLIC_CARD = "public/creators/[id_or_username].py"
FOLLOW = "users/follow.py"
FAVORITE = "users/favorite.py"
ENGAGEMENT = "users/engagement.py"
DIRECTORY = "users/creators.py"
PUBLIC_PAGE = "users/public/creator/[username].py"
SEARCH = "users/search.py"


def _named(
    make_user: MakeUser, username: str, display: str | None = None, kind: str | None = None, **kw: Any
) -> Any:
    user = make_user(role="creator", username=username, **kw)
    sql(
        "UPDATE users SET display_name = %(d)s, creator_type = %(k)s WHERE id = %(id)s",
        {"d": display or username, "k": kind, "id": user.id},
    )
    return user


def _follow(fan: Any, creator: Any) -> None:
    sql("INSERT INTO follows (follower_id, creator_id) VALUES (%(f)s, %(c)s)", {"f": fan.id, "c": creator.id})


def _no_leak(response: Any, *users: Any) -> None:
    assert not private_keys(response.json()), private_keys(response.json())
    for user in users:
        assert user.email not in response.text


# ---- #15 GET /public/creators/{idOrUsername} ----------------------------------------------------------------


def test_public_card_by_username_or_id_with_stats(make_user: MakeUser) -> None:
    creator, fan = _named(make_user, "nova", "Nova Lights", "Music", balance=50), make_user()
    _follow(fan, creator)
    sql(
        "INSERT INTO streams (creator_id, channel, title, status, peak_viewers, started_at, ended_at, end_reason) "
        "VALUES (%(c)s, 'ch_old', 'old', 'ended', 40, now() - interval '1 hour', now(), 'host')",
        {"c": creator.id},
    )
    client = functions.client(PUBLIC_CARD)
    for ref in ("nova", "NOVA", str(creator.id)):
        r = client.get(
            f"/api/v1/public/creators/{ref}", headers=creator.headers
        )  # HybridCreatorDashboard.js:415
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["creator"]["username"] == "nova" and body["creator"]["id"] == str(creator.id)
        assert body["stats"] == {"views": 40, "followers": 1, "subscribers": 0}
        assert all(type(v) is int for v in body["stats"].values())
        _no_leak(r, creator)
    assert client.get("/api/public/creators/nova").status_code == 200  # CreatorCard.js:264 prefetch: no auth
    assert client.get(f"/api/public/creators/{fan.username}").status_code == 404
    assert client.get(f"/api/public/creators/{uuid.uuid4()}").status_code == 404


# ---- #19 POST /users/follow, #10 its /api/v1/api alias -----------------------------------------------------


def test_card_follow_toggles_and_answers_the_action(make_user: MakeUser) -> None:
    creator, fan = _named(make_user, "toggly"), make_user()
    client = functions.client(FOLLOW)
    r = client.post("/api/v1/users/follow", headers=fan.headers, json={"creatorUsername": "toggly"})
    assert r.status_code == 200 and r.json()["action"] == "followed"  # CreatorCard.js:177
    assert r.json()["followersCount"] == 1
    r = client.post("/api/v1/users/follow", headers=fan.headers, json={"creatorUsername": "toggly"})
    assert r.json()["action"] == "unfollowed" and r.json()["followersCount"] == 0
    # MobileCreatorCard.js:164 posts to /api/v1/api/users/follow
    r = client.post("/api/v1/api/users/follow", headers=fan.headers, json={"creatorUsername": "toggly"})
    assert r.status_code == 200 and r.json()["action"] == "followed"
    # an explicit action is idempotent
    for _ in range(2):
        r = client.post(
            "/api/users/follow", headers=fan.headers, json={"creatorId": str(creator.id), "action": "follow"}
        )
        assert r.json()["action"] == "followed" and r.json()["followersCount"] == 1


def test_follow_refuses_unknown_creators_and_yourself(make_user: MakeUser) -> None:
    creator, fan = _named(make_user, "selfie"), make_user()
    client = functions.client(FOLLOW)
    assert (
        client.post("/api/users/follow", headers=fan.headers, json={"creatorUsername": "ghost"}).status_code
        == 404
    )
    assert (
        client.post(
            "/api/users/follow", headers=fan.headers, json={"creatorUsername": fan.username}
        ).status_code
        == 404
    )
    assert (
        client.post(
            "/api/users/follow", headers=creator.headers, json={"creatorUsername": "selfie"}
        ).status_code
        == 400
    )
    assert client.post("/api/users/follow", headers=fan.headers, json={}).status_code == 422
    assert sql("SELECT * FROM follows") == []


# ---- #18 POST /users/favorite, #17 GET /users/engagement ---------------------------------------------------


def test_favorites_and_engagement(make_user: MakeUser) -> None:
    creator, fan = _named(make_user, "fav_one", "Fav One", "Art"), make_user(balance=100)
    sql(
        """INSERT INTO call_sessions (fan_id, creator_id, initiated_by, call_type, state, channel, rate_per_minute,
                                      ring_expires_at, connected_at, ended_at, end_reason, last_billed_minute,
                                      total_cost)
           VALUES (%(f)s, %(c)s, %(f)s, 'video', 'ended', 'call_x', 10, now(), now() - interval '3 minutes',
                   now(), 'hangup', 3, 30)""",
        {"f": fan.id, "c": creator.id},
    )
    fav = functions.client(FAVORITE)
    r = fav.post("/api/v1/users/favorite", headers=fan.headers, json={"creatorId": str(creator.id)})
    assert r.status_code == 200 and r.json()["favorited"] is True
    r = functions.client(ENGAGEMENT).get("/api/v1/users/engagement", headers=fan.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    (session,) = body["watchHistory"]  # FanEngagement.js:220-257
    assert session["creator"] == "fav_one" and session["creatorName"] == "Fav One"
    assert session["type"] == "video_call" and session["duration"] == 3 and session["cost"] == 30
    assert isinstance(session["timestamp"], int)
    (favorite,) = body["favorites"]  # FanEngagement.js:289-346
    assert favorite["id"] == str(creator.id) and favorite["category"] == "Art"
    assert isinstance(favorite["addedAt"], int) and isinstance(favorite["lastInteraction"], int)
    assert favorite["isOnline"] is False and favorite["isLive"] is False
    assert body["achievements"] == []
    assert body["spending"] == {"thisMonth": 30, "total": 30, "sessions": 1, "tips": 0}
    _no_leak(r, creator)
    # the page's remove button toggles it off
    r = fav.post("/api/users/favorite", headers=fan.headers, json={"creatorId": str(creator.id)})
    assert r.json()["favorited"] is False
    assert (
        functions.client(ENGAGEMENT).get("/api/users/engagement", headers=fan.headers).json()["favorites"]
        == []
    )
    assert fav.post("/api/users/favorite", headers=fan.headers, json={"creatorId": "nope"}).status_code == 422
    assert (
        fav.post(
            "/api/users/favorite", headers=fan.headers, json={"creatorId": str(uuid.uuid4())}
        ).status_code
        == 404
    )


# ---- #16 GET /users/creators (ExplorePage) -----------------------------------------------------------------


def test_explore_filters_following_exclusion_and_languages(make_user: MakeUser) -> None:
    me = _named(make_user, "me_creator")
    a, b, c = _named(make_user, "alpha_c"), _named(make_user, "beta_c"), _named(make_user, "gamma_c")
    sql("UPDATE users SET languages = '{English,Spanish}' WHERE id = %(id)s", {"id": a.id})
    sql("UPDATE users SET languages = '{French}' WHERE id = %(id)s", {"id": b.id})
    _follow(me, a)
    _follow(me, c)
    client = functions.client(DIRECTORY)

    def names(query: str, headers: dict[str, str] | None = None) -> set[str]:
        base = "?page=1&limit=20&category=all&sortBy=popular&onlineOnly=false"  # ExplorePage.js:206-212
        r = client.get(f"/api/v1/users/creators{base}{query}", headers=headers or {})
        assert r.status_code == 200, r.text
        _no_leak(r, me, a, b, c)
        return {x["username"] for x in r.json()["creators"]}

    assert names(f"&excludeUserId={me.id}") == {"alpha_c", "beta_c", "gamma_c"}
    assert names(f"&excludeUserId={me.id}&following=1", me.headers) == {"alpha_c", "gamma_c"}
    assert names("&following=1") == set()  # anonymous: follows nobody
    assert names("&languages=Spanish,French") == {"alpha_c", "beta_c"}
    assert names("&languages=english&following=1", me.headers) == {"alpha_c"}
    r = client.get("/api/users/creators?excludeUserId=not-a-uuid")
    assert r.status_code == 422 and "excludeUserId" in r.json()["error"]


# ---- #20 GET /users/public/creator/{username} (CreatorPublicProfileEnhanced) -------------------------------


def test_public_page_live_fields(make_user: MakeUser) -> None:
    creator = _named(make_user, "live_one")
    sql(
        "UPDATE users SET banner_url = 'https://cdn.example.test/b.png' WHERE id = %(id)s", {"id": creator.id}
    )
    sql(
        "INSERT INTO streams (creator_id, channel, title) VALUES (%(c)s, 'ch_live', 'Now')", {"c": creator.id}
    )
    r = functions.client(PUBLIC_PAGE).get("/api/v1/users/public/creator/live_one")
    c = r.json()["creator"]  # CreatorPublicProfileEnhanced.js:497-520
    assert c["banner_url"] == "https://cdn.example.test/b.png" and c["isLiveStreaming"] is True
    assert isinstance(c["streamStartTime"], str) and c["isPaidStream"] is False
    assert c["tokenPrice"] == 0 and c["hasAccess"] is True
    _no_leak(r, creator)


# ---- search: #26 /users/search, #21-#25 /discovery/* -------------------------------------------------------


@pytest.fixture
def catalogue(make_user: MakeUser) -> dict[str, Any]:
    people = {
        "sophia": _named(make_user, "sophia_sings", "Sophia Rivers", "Music", balance=500),
        "sophie": _named(make_user, "sophiemakes", "Sophie Crafts", "Art"),
        "gamer": _named(make_user, "pixel_king", "Pixel King", "Gaming"),
        "chef": _named(make_user, "chef_marco", "Marco Cooks", "Lifestyle"),
        "ann": _named(make_user, "ann", "Ann B", "Fitness"),
        "annabel": _named(make_user, "annabel_fit", "Annabel", "Fitness"),
    }
    people["fan"] = make_user(username="sophia_fan_only")  # a fan is never a search result
    return people


def _search(query: str, headers: dict[str, str] | None = None) -> list[str]:
    r = functions.client(SEARCH).get(f"/api/v1/users/search?q={query}", headers=headers or {})
    assert r.status_code == 200, r.text
    assert not private_keys(r.json())
    return [c["username"] for c in r.json()["creators"]]


def test_search_finds_by_name_and_ranks_exact_then_prefix_first(catalogue: dict[str, Any]) -> None:
    assert _search("ann")[:2] == ["ann", "annabel_fit"]
    assert _search("@Pixel") == ["pixel_king"]
    assert _search("marco")[0] == "chef_marco"  # by display name
    assert "sophia_fan_only" not in _search("sophia")
    assert _search("") == [] and _search("%25") == [] and _search("zzzzqqq") == []


def test_search_tolerates_typos(catalogue: dict[str, Any]) -> None:
    with db.transaction() as conn:
        if not search_module.trigram_available(conn):  # pragma: no cover - only without pg_trgm
            pytest.skip("pg_trgm is not installed here")
    assert _search("sofia")[0] == "sophia_sings"
    assert "pixel_king" in _search("pixle king")


def test_search_results_carry_what_token_tipping_reads_and_nothing_private(catalogue: dict[str, Any]) -> None:
    r = functions.client(SEARCH).get("/api/users/search?q=sophia")
    first = r.json()["creators"][0]  # TokenTipping.js:232-255
    assert first["id"] == str(catalogue["sophia"].id) and first["username"] == "sophia_sings"
    assert first["profile_pic_url"] is None or isinstance(first["profile_pic_url"], str)
    _no_leak(r, *[u for u in catalogue.values()])


def test_search_without_trigram_falls_back_to_substring(catalogue: dict[str, Any], monkeypatch: Any) -> None:
    monkeypatch.setattr(search_module, "trigram_available", lambda conn: False)
    assert _search("ann")[:2] == ["ann", "annabel_fit"]
    assert _search("crafts") == ["sophiemakes"]


@pytest.mark.parametrize("feed", ["featured", "trending", "recommendations", "search"])
def test_discovery_feeds_answer_the_modal(catalogue: dict[str, Any], feed: str) -> None:
    fan = catalogue["fan"]
    _follow(fan, catalogue["sophia"])
    query = "limit=20" + ("&q=soph" if feed == "search" else "")  # EnhancedCreatorDiscovery.js:80-103
    r = functions.client(f"discovery/{feed}.py").get(f"/api/v1/discovery/{feed}?{query}", headers=fan.headers)
    assert r.status_code == 200, r.text
    creators = r.json()["creators"]
    assert creators, feed
    for c in creators:  # the modal's card, EnhancedCreatorDiscovery.js:187-330
        assert (
            isinstance(c["displayName"], str)
            and isinstance(c["username"], str)
            and isinstance(c["isOnline"], bool)
        )
        assert isinstance(c["creatorProfile"]["categories"], list)
        assert set(c["creatorProfile"]["pricing"]) == {"videoCall", "phoneCall", "privateStream"}
        assert c["creatorProfile"]["analytics"]["totalSubscribers"] == 0
    _no_leak(r, *catalogue.values())
    if feed == "trending":
        assert creators[0]["username"] == "sophia_sings" and creators[0]["trendingScore"] == 1
    if feed == "recommendations":
        assert "sophia_sings" not in [c["username"] for c in creators]  # already followed
        assert creators[0]["recommendationReason"] == "Popular on Digis"
    if feed == "search":
        assert [c["username"] for c in creators][:2] == ["sophia_sings", "sophiemakes"] or {
            c["username"] for c in creators[:2]
        } == {"sophia_sings", "sophiemakes"}


def test_discovery_filters_and_categories(catalogue: dict[str, Any]) -> None:
    client = functions.client("discovery/featured.py")
    r = client.get(
        "/api/discovery/featured?limit=20&category=fitness&maxPrice=12&sortBy=price_low&minRating=4"
    )
    assert r.status_code == 200, r.text
    assert {c["username"] for c in r.json()["creators"]} == {"ann", "annabel_fit"}
    assert client.get("/api/discovery/featured?limit=500").status_code == 422
    assert client.get("/api/discovery/featured?sortBy=nonsense").status_code == 422
    r = functions.client("discovery/categories.py").get("/api/v1/discovery/categories")
    cats = r.json()["categories"]  # EnhancedCreatorDiscovery.js:358-361
    assert cats[0] == {"id": "fitness", "name": "Fitness", "creatorCount": 2}
    assert {c["id"] for c in cats} == {"fitness", "music", "art", "gaming", "lifestyle"}
    assert functions.client("discovery/search.py").get("/api/discovery/search?q=").json()["creators"] == []
