"""GET /tips/stats/{creatorId}?period= as TipLeaderboard.jsx reads it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lib import db
from tests.conftest import MakeUser
from tests.conftest import TestUser as Person
from tests.support.functions import client
from tests.tips.helpers import go_live, send_gift, send_tip

TIPPER_FIELDS = {
    "id": str,
    "username": str,
    "display_name": str,
    "total_amount": int,
    "tip_count": int,
    "rank": int,
}


def stats(who: Person, creator_id: uuid.UUID | str, query: str = "") -> Any:
    return client("tips/stats/[creator_id].py").get(
        f"/api/v1/tips/stats/{creator_id}{query}", headers=who.headers
    )


def tip(fan: Person, creator: Person, amount: int, days_ago: float = 0) -> None:
    r = send_tip(fan, {"toCreatorId": str(creator.id), "amountTokens": amount, "message": str(uuid.uuid4())})
    assert r.status_code == 200, r.text
    if days_ago:
        with db.transaction() as conn:
            conn.execute(
                "UPDATE tips SET created_at = now() - make_interval(secs => %s) WHERE id = %s",
                (days_ago * 86_400, r.json()["tipId"]),
            )


def test_top_tippers_by_period_with_the_fields_the_page_reads(make_user: MakeUser) -> None:
    creator, other = make_user(role="creator"), make_user(role="creator")
    a, b, c = (make_user(balance=10_000) for _ in range(3))
    tip(a, creator, 100)
    tip(a, creator, 50, days_ago=3)  # week, not today
    tip(b, creator, 120)
    tip(c, creator, 400, days_ago=20)  # month only
    tip(c, creator, 1000, days_ago=60)  # all only
    tip(b, other, 5000)  # another creator's: never counted
    channel = go_live(creator)["channel"]
    gift = send_gift(
        b, {"channel": channel, "creatorId": str(creator.id), "giftType": "heart", "quantity": 2}
    )
    assert gift.status_code == 200  # gifts are tips: b has 120 + 10 today

    expected = {
        "today": [(b, 130, 2), (a, 100, 1)],
        "week": [(a, 150, 2), (b, 130, 2)],
        "month": [(c, 400, 1), (a, 150, 2), (b, 130, 2)],
        "all": [(c, 1400, 2), (a, 150, 2), (b, 130, 2)],
    }
    for period, rows in expected.items():
        r = stats(a, creator.id, f"?period={period}")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["period"] == period and body["creatorId"] == str(creator.id)
        got = [(t["id"], t["total_amount"], t["tip_count"]) for t in body["top_tippers"]]
        assert got == [(str(u.id), total, n) for u, total, n in rows], period
        assert [t["rank"] for t in body["top_tippers"]] == list(range(1, len(rows) + 1))
        assert body["total_amount"] == sum(total for _, total, _ in rows)
        assert body["tip_count"] == sum(n for _, _, n in rows)
        assert (body["since"] is None) == (period == "all")
        for t in body["top_tippers"]:
            for field, kind in TIPPER_FIELDS.items():
                assert isinstance(t[field], kind), (field, t)
            assert "profile_pic_url" in t
            assert t["username"] == next(u.username for u, _, _ in rows if str(u.id) == t["id"])


def test_ties_go_to_who_got_there_first_and_limit_cuts_the_list(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    early, late = make_user(balance=100), make_user(balance=100)
    tip(early, creator, 10, days_ago=0.5)
    tip(late, creator, 10)
    body = stats(late, creator.id, "?period=today").json()
    assert [t["id"] for t in body["top_tippers"]] == [str(early.id), str(late.id)]
    limited = stats(late, creator.id, "?period=today&limit=1").json()
    assert [t["id"] for t in limited["top_tippers"]] == [str(early.id)] and limited["total_amount"] == 20


def test_no_tips_is_an_empty_list_and_the_default_period_is_today(make_user: MakeUser) -> None:
    creator, fan = make_user(role="creator"), make_user()
    body = stats(fan, creator.id).json()
    assert (body["top_tippers"], body["total_amount"], body["period"]) == ([], 0, "today")


@pytest.mark.parametrize("query", ["?period=year", "?period=", "?limit=0", "?limit=51"])
def test_bad_queries_are_422(make_user: MakeUser, query: str) -> None:
    creator, fan = make_user(role="creator"), make_user()
    assert stats(fan, creator.id, query).status_code == 422


def test_unknown_creator_is_404_and_a_token_is_needed(make_user: MakeUser) -> None:
    fan = make_user()
    assert stats(fan, uuid.uuid4()).json()["code"] == "CREATOR_NOT_FOUND"
    assert stats(fan, "not-a-uuid").status_code == 422
    creator = make_user(role="creator")
    r = client("tips/stats/[creator_id].py").get(f"/api/tips/stats/{creator.id}?period=week")
    assert r.status_code == 401
