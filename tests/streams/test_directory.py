"""The public live directory: most watched first, the channel to open, never an email, on every path form."""

from __future__ import annotations

import pytest

from lib import db
from tests.conftest import MakeUser
from tests.streams.helpers import directory_client, end_client, go_live


def set_viewers(stream_id: str, count: int) -> None:
    with db.transaction() as conn:
        conn.execute(
            "UPDATE streams SET viewer_count = %(n)s, peak_viewers = %(n)s WHERE id = %(id)s",
            {"n": count, "id": stream_id},
        )


@pytest.mark.parametrize(
    "path",
    [
        "/api/streaming/public/streams/live",
        "/api/v1/streaming/public/streams/live",
        "/api/public/streams/live",
        "/api/v1/public/streams/live",
        "/public/streams/live",
    ],
)
def test_directory_lists_live_streams_most_watched_first(make_user: MakeUser, path: str) -> None:
    small, big, gone = (make_user(role="creator") for _ in range(3))
    with db.transaction() as conn:
        conn.execute(
            "UPDATE users SET display_name = 'Big Star', profile_pic_url = 'https://cdn.example/big.png'"
            " WHERE id = %(id)s",
            {"id": big.id},
        )
    # GoLivePage.js sends these keys; tags are kept (deduplicated), the rest ignored.
    small_stream = go_live(
        small, "Small", category="art", tags=["paint", "live", "paint"], privacy="public", selectedProducts=[]
    )["stream"]
    big_stream = go_live(big, "Big")["stream"]
    ended = go_live(gone, "Over")["stream"]
    set_viewers(small_stream["id"], 3)
    set_viewers(big_stream["id"], 40)
    end_client().post(f"/api/streaming/end-stream/{ended['id']}", headers=gone.headers)

    r = directory_client().get(path)  # no token: the directory is public
    assert r.status_code == 200, r.text
    assert "s-maxage" in r.headers["cache-control"]
    body = r.json()
    assert (body["total"], body["hasMore"], body["limit"], body["offset"]) == (2, False, 50, 0)
    first, second = body["streams"]
    assert first == {
        "id": big_stream["id"],
        "channel": big_stream["channel"],
        "creator_id": str(big.id),
        "creator_username": big.username,
        "creator_name": "Big Star",
        "creator_avatar": "https://cdn.example/big.png",
        "title": "Big",
        "category": None,
        "viewer_count": 40,
        "started_at": first["started_at"],
        # TVPage.js and ExplorePage.js read these too.
        "is_live": True,
        "is_free": True,
        "thumbnail": "https://cdn.example/big.png",
        "tags": [],
        "likes": 0,
        "tips": 0,
    }
    assert (second["id"], second["viewer_count"], second["category"]) == (small_stream["id"], 3, "art")
    assert (second["tags"], second["thumbnail"]) == (["paint", "live"], None)
    assert "@" not in r.text  # no email anywhere, not even as a display name


def test_directory_pages(make_user: MakeUser) -> None:
    for n in range(3):
        stream = go_live(make_user(role="creator"), f"Show {n}")["stream"]
        set_viewers(stream["id"], n)
    page = directory_client().get("/api/public/streams/live?limit=2&offset=1").json()
    assert [s["title"] for s in page["streams"]] == ["Show 1", "Show 0"]
    assert (page["total"], page["hasMore"]) == (3, False)
    first = directory_client().get("/api/public/streams/live?limit=1").json()
    assert first["hasMore"] is True and first["streams"][0]["title"] == "Show 2"
    assert directory_client().get("/api/public/streams/live?limit=101").status_code == 422
