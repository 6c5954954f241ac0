"""POST /tips/send as each page sends it (TipButton, TokenTipping, VirtualGifts), in a stream by its channel."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from lib import db, realtime, streams, tips, users
from tests.conftest import MakeUser
from tests.money.conftest import assert_books_balance
from tests.tips.helpers import (
    balance,
    end_stream,
    go_live,
    ledger_rows,
    outbox,
    send_tip,
    stream_tips,
    tips_rows,
)

TIP_FIELDS = {"tipId": str, "amountTokens": int, "new_balance": int, "creatorCut": int, "platformFee": int}


def assert_tip_answer(body: dict[str, Any], amount: int, new_balance: int) -> None:
    """Every field the pages read, with its type, at the top level and under `data` (TipButton reads data.*)."""
    for where in (body, body["data"]):
        for field, kind in TIP_FIELDS.items():
            assert isinstance(where[field], kind) and not isinstance(where[field], bool), (field, where)
        assert (where["amountTokens"], where["new_balance"]) == (amount, new_balance)
    assert body["success"] is True and body["data"]["tipId"] == body["tipId"]


def test_tip_button_in_a_stream_sends_the_channel_as_stream_id(make_user: MakeUser) -> None:
    fan, host = make_user(balance=100), make_user(role="creator")
    stream = go_live(host)
    channel = stream["channel"]
    # StreamingLayout.js:1171 -> TipButton.jsx:38, exactly: context.streamId is the Agora channel string.
    body = {
        "toCreatorId": str(host.id),
        "amountTokens": 25,
        "message": "",
        "context": {"streamId": channel, "channel": channel, "type": "live_stream"},
    }
    r = send_tip(fan, body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert_tip_answer(answer, 25, 75)
    assert answer["streamId"] == stream["id"] and answer["replayed"] is False
    assert stream_tips(stream["id"]) == 25
    [event] = outbox("tip-received")
    assert event["channel"] == realtime.stream_channel(channel)
    payload = event["payload"]
    # The stream pages match data.channel against their channel and read amount, sender and message.
    assert (payload["channel"], payload["amount"], payload["sender"]) == (channel, 25, fan.username)
    assert payload["message"] is None and payload["streamId"] == stream["id"]
    assert end_stream(host, stream["id"])["tipsTokens"] == 25
    assert_books_balance()


def test_token_tipping_sends_recipient_id_tokens_and_a_tier(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=600), make_user(role="creator")
    # TokenTipping.js:150-153, exactly.
    body = {"recipientId": str(creator.id), "tokens": 500, "message": "legend", "tierType": "legendary"}
    r = send_tip(fan, body)
    assert r.status_code == 200, r.text
    assert_tip_answer(r.json(), 500, 100)
    assert r.json()["streamId"] is None
    assert balance(creator.id) == 500
    [row] = tips_rows(fan.id)
    assert (row["amount"], row["message"], row["stream_id"], row["gift_type"]) == (500, "legend", None, None)


def test_virtual_gifts_tip_tab_reads_the_top_level_new_balance(make_user: MakeUser) -> None:
    fan, host = make_user(balance=300), make_user(role="creator")
    channel = go_live(host)["channel"]
    # VirtualGifts.js:287-301: Math.ceil(5 / 0.05) tokens, the gift message, the channel as streamId.
    body = {
        "toCreatorId": str(host.id),
        "amountTokens": 100,
        "message": "",
        "context": {"streamId": channel, "channel": channel, "type": "live_stream"},
    }
    r = send_tip(fan, body)
    assert r.status_code == 200, r.text
    assert r.json()["new_balance"] == 200


def test_a_stream_id_uuid_still_works(make_user: MakeUser) -> None:
    fan, host = make_user(balance=50), make_user(role="creator")
    stream = go_live(host)
    r = send_tip(fan, {"toCreatorId": str(host.id), "amountTokens": 5, "context": {"streamId": stream["id"]}})
    assert r.status_code == 200 and r.json()["streamId"] == stream["id"]
    assert stream_tips(stream["id"]) == 5


def test_a_stream_reference_that_names_nothing_is_a_plain_tip(make_user: MakeUser) -> None:
    # The fan meant to tip the creator; an unknown or ended stream only means the tip counts in no stream.
    fan, creator = make_user(balance=50), make_user(role="creator")
    context = {"streamId": "no-such-channel", "channel": "no-such-channel", "type": "live_stream"}
    r = send_tip(fan, {"toCreatorId": str(creator.id), "amountTokens": 7, "context": context})
    assert r.status_code == 200, r.text
    assert r.json()["streamId"] is None and r.json()["new_balance"] == 43
    assert outbox("tip-received") == []


def test_an_ended_stream_is_not_credited(make_user: MakeUser) -> None:
    fan, host = make_user(balance=50), make_user(role="creator")
    stream = go_live(host)
    end_stream(host, stream["id"])
    context = {"streamId": stream["channel"], "channel": stream["channel"]}
    r = send_tip(fan, {"toCreatorId": str(host.id), "amountTokens": 7, "context": context})
    assert r.status_code == 200 and r.json()["streamId"] is None
    assert stream_tips(stream["id"]) == 0


def test_two_different_recipients_or_amounts_in_one_body_are_422(make_user: MakeUser) -> None:
    fan, a, b = make_user(balance=50), make_user(role="creator"), make_user(role="creator")
    r = send_tip(fan, {"toCreatorId": str(a.id), "recipientId": str(b.id), "amountTokens": 1})
    assert r.status_code == 422 and r.json()["code"] == "VALIDATION_ERROR"
    r = send_tip(fan, {"toCreatorId": str(a.id), "amountTokens": 1, "tokens": 2})
    assert r.status_code == 422
    # The same value under both keys is one field.
    assert send_tip(fan, {"toCreatorId": str(a.id), "recipientId": str(a.id), "tokens": 1}).status_code == 200
    assert balance(fan.id) == 49


def test_missing_amount_names_the_field_and_a_string_amount_is_422(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=50), make_user(role="creator")
    r = send_tip(fan, {"recipientId": str(creator.id)})
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"amountTokens"}
    r = send_tip(fan, {"recipientId": str(creator.id), "tokens": "10"})
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"tokens"}
    long_ref = {"streamId": "x" * 201}
    r = send_tip(fan, {"toCreatorId": str(creator.id), "amountTokens": 1, "context": long_ref})
    assert r.status_code == 422
    assert tips_rows(fan.id) == []


def test_insufficient_balance_is_402_and_writes_nothing(make_user: MakeUser) -> None:
    fan, host = make_user(balance=9), make_user(role="creator")
    channel = go_live(host)["channel"]
    before = outbox()
    r = send_tip(fan, {"recipientId": str(host.id), "tokens": 10, "context": {"streamId": channel}})
    assert r.status_code == 402
    assert (r.json()["code"], r.json()["current_balance"], r.json()["required_amount"]) == (
        "INSUFFICIENT_TOKENS",
        9,
        10,
    )
    assert tips_rows(fan.id) == [] and ledger_rows(fan.id) == [] and outbox() == before
    assert balance(fan.id) == 9 and balance(host.id) == 0


def test_a_tip_racing_end_stream_is_counted_before_the_summary_or_not_at_all(make_user: MakeUser) -> None:
    fan, host = make_user(balance=50), make_user(role="creator")
    stream = go_live(host)
    answers: list[Any] = []
    context = {"streamId": stream["channel"], "channel": stream["channel"]}
    tip = threading.Thread(
        target=lambda: answers.append(
            send_tip(fan, {"toCreatorId": str(host.id), "amountTokens": 10, "context": context})
        )
    )
    with db.transaction() as conn:
        host_user = users.get(conn, host.id)
        assert host_user is not None
        summary = streams.end_stream(conn, uuid.UUID(stream["id"]), host_user)  # holds the stream row
        tip.start()
        time.sleep(0.5)
        assert tip.is_alive(), "the tip must wait for the ending stream's row"
    tip.join(10)
    [r] = answers
    assert r.status_code == 200 and r.json()["streamId"] is None
    assert summary.stream.tipsTokens == stream_tips(stream["id"]) == 0
    assert balance(host.id) == 10


def test_end_stream_waits_for_a_tip_in_flight_and_its_summary_counts_it(make_user: MakeUser) -> None:
    fan, host = make_user(balance=50), make_user(role="creator")
    stream = go_live(host)
    summaries: list[dict[str, Any]] = []
    ending = threading.Thread(target=lambda: summaries.append(end_stream(host, stream["id"])))
    body = {"toCreatorId": str(host.id), "amountTokens": 10, "context": {"streamId": stream["channel"]}}
    with db.transaction() as conn:
        sender = users.get(conn, fan.id)
        assert sender is not None
        assert tips.send_tip(conn, sender, tips.TipRequest.model_validate(body)).streamId is not None
        ending.start()
        time.sleep(0.5)
        assert ending.is_alive(), "ending the stream must wait for the tip holding its row"
    ending.join(10)
    [summary] = summaries
    assert summary["tipsTokens"] == stream_tips(stream["id"]) == 10
