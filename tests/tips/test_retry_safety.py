"""Tips and gifts without an Idempotency-Key: a retried or double-clicked request is sent once."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from lib import db, tips
from localdev import vercel_router
from tests.conftest import MakeUser
from tests.money.conftest import assert_books_balance
from tests.tips.helpers import balance, go_live, outbox, send_gift, send_tip, tips_rows


def test_a_retried_tip_is_answered_with_the_first_and_charged_once(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    body = {"toCreatorId": str(creator.id), "amountTokens": 25, "message": "", "context": {}}
    first, again = send_tip(fan, body), send_tip(fan, body)
    assert first.status_code == again.status_code == 200
    assert again.json()["tipId"] == first.json()["tipId"]
    assert (first.json()["replayed"], again.json()["replayed"]) == (False, True)
    assert again.json()["data"]["new_balance"] == again.json()["new_balance"] == 75
    assert len(tips_rows(fan.id)) == 1 and balance(fan.id) == 75 and balance(creator.id) == 25
    assert len(outbox("tip:received")) == 1  # the replay announces nothing
    assert_books_balance()


def test_a_retry_after_the_balance_ran_low_still_replays_rather_than_402(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=30), make_user(role="creator")
    body = {"recipientId": str(creator.id), "tokens": 25, "tierType": "custom"}
    assert send_tip(fan, body).status_code == 200
    again = send_tip(fan, body)
    assert again.status_code == 200 and again.json()["replayed"] is True and again.json()["new_balance"] == 5


def test_a_double_click_sent_at_once_moves_tokens_once(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    body = {"toCreatorId": str(creator.id), "amountTokens": 10, "message": "hi"}
    with vercel_router.running() as server, httpx.Client(base_url=server.url, timeout=30) as client:
        client.get("/api/tokens/balance", headers=fan.headers).raise_for_status()  # load the functions first
        start = threading.Barrier(4, timeout=20)

        def one(_: int) -> Any:
            start.wait()
            return client.post("/api/v1/tips/send", json=body, headers=fan.headers)

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(one, range(4), timeout=60))
    assert [r.status_code for r in answers] == [200] * 4
    assert len({r.json()["tipId"] for r in answers}) == 1
    assert sorted(r.json()["replayed"] for r in answers) == [False, True, True, True]
    assert balance(fan.id) == 90 and len(tips_rows(fan.id)) == 1
    assert_books_balance()


def test_different_intents_are_separate_tips(make_user: MakeUser) -> None:
    fan, a, b = make_user(balance=100), make_user(role="creator"), make_user(role="creator")
    base = {"toCreatorId": str(a.id), "amountTokens": 5}
    for body in (
        base,
        {**base, "amountTokens": 6},
        {**base, "message": "again!"},
        {**base, "toCreatorId": str(b.id)},
        {**base, "context": {"channel": "some-stream"}},
    ):
        r = send_tip(fan, body)
        assert r.status_code == 200 and r.json()["replayed"] is False, body
    assert len(tips_rows(fan.id)) == 5 and balance(fan.id) == 100 - 26


def test_the_same_tip_after_the_window_is_a_new_tip(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    body = {"toCreatorId": str(creator.id), "amountTokens": 5}
    first = send_tip(fan, body).json()["tipId"]
    with db.transaction() as conn:
        conn.execute(
            "UPDATE tips SET created_at = created_at - make_interval(secs => %s) WHERE id = %s",
            (tips.DUPLICATE_WINDOW_S + 1, first),
        )
    again = send_tip(fan, body)
    assert again.json()["replayed"] is False and again.json()["tipId"] != first
    assert balance(fan.id) == 90


def test_distinct_idempotency_keys_are_distinct_tips_and_a_repeated_key_replays(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    body = {"toCreatorId": str(creator.id), "amountTokens": 5}
    k1, k2 = str(uuid.uuid4()), str(uuid.uuid4())
    assert send_tip(fan, body, **{"Idempotency-Key": k1}).status_code == 200
    assert send_tip(fan, body, **{"Idempotency-Key": k2}).json()["replayed"] is False
    replay = send_tip(fan, body, **{"Idempotency-Key": k1})
    assert replay.headers["Idempotency-Replayed"] == "true"
    assert balance(fan.id) == 90


def test_a_retried_gift_is_sent_once(make_user: MakeUser) -> None:
    fan, host = make_user(balance=1000), make_user(role="creator")
    channel = go_live(host)["channel"]
    body = {"channel": channel, "creatorId": str(host.id), "giftType": "rocket", "quantity": 1}
    first, again = send_gift(fan, body), send_gift(fan, body)
    assert first.status_code == again.status_code == 200
    assert again.json()["giftId"] == first.json()["giftId"] and again.json()["replayed"] is True
    assert balance(fan.id) == 750 and len(outbox("gift-received")) == 1
    # The same gift as a plain tip of the same amount is another request.
    assert send_tip(fan, {"toCreatorId": str(host.id), "amountTokens": 250}).json()["replayed"] is False
