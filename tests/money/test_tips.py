"""POST /tips/send: validation, who may tip whom, 402s, stream tips and the realtime events they queue."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lib import db, ledger, realtime
from tests.conftest import MakeUser
from tests.money.conftest import assert_books_balance
from tests.support.functions import client

TIPS = "tips/send.py"


def send(user: Any, body: dict[str, Any], **headers: str) -> Any:
    return client(TIPS).post("/api/tips/send", json=body, headers={**user.headers, **headers})


def outbox() -> list[dict[str, Any]]:
    with db.transaction() as conn:
        return [
            dict(r) for r in conn.execute("SELECT channel, event, payload FROM realtime_outbox ORDER BY id")
        ]


def test_tip_moves_tokens_and_answers_the_frontend_fields(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    r = send(fan, {"toCreatorId": str(creator.id), "amountTokens": 25, "message": "hi"})
    assert r.status_code == 200, r.text
    body = r.json()
    fields = {"tipId", "amountTokens", "new_balance", "creatorCut", "platformFee", "streamId", "replayed"}
    assert set(body) == fields | {"success", "data"} and set(body["data"]) == fields
    assert (body["amountTokens"], body["new_balance"], body["creatorCut"], body["platformFee"]) == (
        25,
        75,
        25,
        0,
    )
    with db.transaction() as conn:
        tip = conn.execute("SELECT * FROM tips WHERE id = %s", (body["tipId"],)).fetchone()
        assert ledger.balance(conn, creator.id) == 25
    assert tip is not None and tip["message"] == "hi" and tip["stream_id"] is None
    assert_books_balance()


@pytest.mark.parametrize("amount", ["10", 10.0, 10.5, True, None, 0, -1, 100_001])
def test_amount_must_be_a_json_integer_in_range(make_user: MakeUser, amount: Any) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    r = send(fan, {"toCreatorId": str(creator.id), "amountTokens": amount})
    assert r.status_code == 422
    assert any(e["field"] == "amountTokens" for e in r.json()["errors"])


def test_largest_tip_is_accepted(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100_000), make_user(role="creator")
    assert send(fan, {"toCreatorId": str(creator.id), "amountTokens": 100_000}).status_code == 200


def test_insufficient_balance_is_402_with_balance_and_required(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=9), make_user(role="creator")
    r = send(fan, {"toCreatorId": str(creator.id), "amountTokens": 10})
    assert r.status_code == 402
    body = r.json()
    assert (body["code"], body["current_balance"], body["required_amount"]) == ("INSUFFICIENT_TOKENS", 9, 10)
    assert outbox() == []


def test_no_self_tips_and_creators_only(make_user: MakeUser) -> None:
    creator, fan, other_fan = make_user(role="creator", balance=50), make_user(balance=50), make_user()
    assert send(creator, {"toCreatorId": str(creator.id), "amountTokens": 1}).json()["code"] == "SELF_TIP"
    r = send(fan, {"toCreatorId": str(other_fan.id), "amountTokens": 1})
    assert (r.status_code, r.json()["code"]) == (400, "NOT_A_CREATOR")
    r = send(fan, {"toCreatorId": str(uuid.uuid4()), "amountTokens": 1})
    assert (r.status_code, r.json()["code"]) == (404, "CREATOR_NOT_FOUND")


def test_tip_requires_a_token(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    r = client(TIPS).post("/api/tips/send", json={"toCreatorId": str(creator.id), "amountTokens": 1})
    assert r.status_code == 401


def test_tip_queues_balance_and_tip_events_for_both_sides(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    tip_id = send(fan, {"toCreatorId": str(creator.id), "amountTokens": 30}).json()["tipId"]
    events = {(e["channel"], e["event"]): e["payload"] for e in outbox()}
    assert events[(f"private-user-{fan.id}", "balance:update")] == {
        "balance": 70,
        "delta": -30,
        "reason": "tip_sent",
    }
    assert events[(f"private-user-{creator.id}", "balance:update")] == {
        "balance": 30,
        "delta": 30,
        "reason": "tip_received",
    }
    assert events[(f"private-user-{creator.id}", "tip:received")] == {
        "tipId": tip_id,
        "amountTokens": 30,
        "fromUserId": str(fan.id),
        "fromUsername": fan.username,
    }
    assert not any(e["event"] == "tip-received" for e in outbox())


def _live_stream(creator_id: uuid.UUID, channel: str) -> uuid.UUID:
    with db.transaction() as conn:
        row = conn.execute(
            "INSERT INTO streams (creator_id, channel, title) VALUES (%s, %s, 'live') RETURNING id",
            (creator_id, channel),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row["id"]))


def test_stream_tip_updates_the_stream_total_and_announces_tip_received(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    stream_id = _live_stream(creator.id, "live-abc")
    body = {
        "toCreatorId": str(creator.id),
        "amountTokens": 12,
        "message": "gg",
        "context": {"streamId": str(stream_id), "channel": "live-abc"},
    }
    tip_id = send(fan, body).json()["tipId"]
    with db.transaction() as conn:
        assert conn.execute("SELECT tips_tokens FROM streams WHERE id = %s", (stream_id,)).fetchone() == {
            "tips_tokens": 12
        }
    new = [e for e in outbox() if e["event"] == "tip-received"]
    assert new == [
        {
            "channel": realtime.stream_channel("live-abc"),
            "event": "tip-received",
            "payload": {
                "tipId": tip_id,
                "streamId": str(stream_id),
                "channel": "live-abc",
                "amount": 12,
                "amountTokens": 12,
                "sender": fan.username,
                "fromUsername": fan.username,
                "message": "gg",
            },
        }
    ]


def test_stream_context_of_another_creator_is_not_credited_to_that_stream(make_user: MakeUser) -> None:
    fan, creator, other = make_user(balance=100), make_user(role="creator"), make_user(role="creator")
    stream_id = _live_stream(other.id, "someone-else")
    r = send(fan, {"toCreatorId": str(creator.id), "amountTokens": 5, "context": {"channel": "someone-else"}})
    assert r.status_code == 200
    with db.transaction() as conn:
        assert conn.execute("SELECT tips_tokens FROM streams WHERE id = %s", (stream_id,)).fetchone() == {
            "tips_tokens": 0
        }
