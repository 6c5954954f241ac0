"""The call state machine through its routes: who may do what, in which state, and what each move announces."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

import pytest

from lib import calls, realtime
from tests.calls.helpers import (
    CALL_ROUTES,
    balance,
    call_row,
    client,
    in_tx,
    minute_charges,
    outbox,
    place,
    real_now,
    seconds,
)
from tests.conftest import MakeUser
from tests.conftest import TestUser as Person


def request(fan: Person, creator: Person, call_type: str = "video", **headers: str) -> dict:
    r = client("calls/request.py").post(
        "/api/calls/request",
        json={"creatorId": str(creator.id), "callType": call_type},
        headers={**fan.headers, **headers},
    )
    assert r.status_code == 200, r.text
    return r.json()


def post(who: Person, call_id: str, action: str) -> tuple[int, dict]:
    r = client(f"calls/[call_id]/{action}.py").post(f"/api/v1/calls/{call_id}/{action}", headers=who.headers)
    return r.status_code, r.json()


def test_request_rings_the_creator_and_announces_call_request(fan: Person, creator: Person) -> None:
    body = request(fan, creator)
    assert body["state"] == "ringing" and body["callType"] == "video" and body["ratePerMinute"] == 10
    assert body["channel"].startswith("call-")
    [event] = outbox(realtime.user_channel(creator.id), "call:request")
    assert event["payload"]["callId"] == body["callId"]
    assert event["payload"]["fanId"] == str(fan.id) and event["payload"]["rate"] == 10
    assert datetime.fromisoformat(event["payload"]["expiresAt"]) == datetime.fromisoformat(body["expiresAt"])


def test_request_without_one_minute_of_tokens_is_402(make_user: MakeUser, creator: Person) -> None:
    poor = make_user(balance=9)
    r = client("calls/request.py").post(
        "/api/calls/request", json={"creatorId": str(creator.id), "callType": "video"}, headers=poor.headers
    )
    assert r.status_code == 402
    assert r.json()["code"] == "INSUFFICIENT_TOKENS"
    assert r.json()["current_balance"] == 9 and r.json()["required_amount"] == 10
    # Six tokens do buy a minute of voice.
    assert request(poor, creator, "voice")["ratePerMinute"] == 6


@pytest.mark.parametrize("target", ["fan", "self", "nobody"])
def test_request_to_anyone_but_a_creator_is_refused(fan: Person, make_user: MakeUser, target: str) -> None:
    other = make_user(balance=5)
    creator_id = {"fan": other.id, "self": fan.id, "nobody": uuid4()}[target]
    r = client("calls/request.py").post(
        "/api/calls/request", json={"creatorId": str(creator_id), "callType": "video"}, headers=fan.headers
    )
    assert r.status_code == (400 if target == "self" else 404)


def test_request_replays_with_the_same_idempotency_key(fan: Person, creator: Person) -> None:
    first = request(fan, creator, **{"Idempotency-Key": "ring-1"})
    again = client("calls/request.py").post(
        "/api/calls/request",
        json={"creatorId": str(creator.id), "callType": "video"},
        headers={**fan.headers, "Idempotency-Key": "ring-1"},
    )
    assert again.status_code == 200 and again.json() == first
    assert again.headers["Idempotency-Replayed"] == "true"
    assert len(outbox(realtime.user_channel(creator.id), "call:request")) == 1


def test_only_the_callee_accepts_and_minute_one_is_charged(fan: Person, creator: Person) -> None:
    call_id = request(fan, creator)["callId"]
    status, body = post(fan, call_id, "accept")
    assert status == 403 and body["code"] == "NOT_CALLEE"
    status, body = post(creator, call_id, "accept")
    assert status == 200, body
    assert body["callId"] == call_id and body["appId"] == "970CA35de60c44645bbae8a215061b33"
    assert body["token"].startswith("006") and body["uid"] > 0 and body["ratePerMinute"] == 10
    assert 60 < body["expiresIn"] <= 90  # the paid minute plus the grace
    assert balance(fan) == 90 and balance(creator) == 10
    assert call_row(call_id).state == "active"
    for user in (fan, creator):
        assert [e["payload"]["state"] for e in outbox(realtime.user_channel(user.id), "call:accepted")] == [
            "active"
        ]
    [billed] = outbox(event="call:minute_billed")
    assert billed["payload"] == {"callId": call_id, "minute": 1, "fanBalance": 90}
    status, body = post(creator, call_id, "accept")
    assert status == 409 and body["code"] == "CALL_NOT_RINGING"


def test_a_creator_invites_a_fan_who_pays_on_accepting(fan: Person, creator: Person) -> None:
    r = client("calls/initiate.py").post(
        "/api/calls/initiate",
        json={"fanId": str(fan.id), "callType": "voice", "message": "hi"},
        headers=creator.headers,
    )
    assert r.status_code == 200, r.text
    call_id = r.json()["callId"]
    [event] = outbox(realtime.user_channel(fan.id), "call:request")
    assert event["payload"]["creatorId"] == str(creator.id) and event["payload"]["rate"] == 6
    assert post(creator, call_id, "accept")[0] == 403
    assert post(fan, call_id, "accept")[0] == 200
    assert balance(fan) == 94


def test_a_fan_cannot_initiate(fan: Person, outsider: Person) -> None:
    r = client("calls/initiate.py").post(
        "/api/calls/initiate", json={"fanId": str(outsider.id), "callType": "video"}, headers=fan.headers
    )
    assert r.status_code == 403


def test_accepting_without_the_tokens_is_402_and_the_call_keeps_ringing(
    make_user: MakeUser, creator: Person
) -> None:
    poor = make_user(balance=0)
    r = client("calls/initiate.py").post(
        "/api/calls/initiate", json={"fanId": str(poor.id), "callType": "video"}, headers=creator.headers
    )
    call_id = r.json()["callId"]
    status, body = post(poor, call_id, "accept")
    assert status == 402 and body["code"] == "INSUFFICIENT_TOKENS"
    assert call_row(call_id).state == "ringing" and minute_charges(call_id) == []


def test_callee_declines_and_caller_cancels(fan: Person, creator: Person, make_user: MakeUser) -> None:
    call_id = request(fan, creator)["callId"]
    assert post(fan, call_id, "decline")[0] == 403
    status, body = post(creator, call_id, "decline")
    assert status == 200 and body["state"] == "declined" and body["endReason"] == "declined"
    assert post(creator, call_id, "decline")[1]["state"] == "declined"  # repeatable
    assert [e["payload"]["state"] for e in outbox(realtime.user_channel(fan.id), "call:rejected")] == [
        "declined"
    ]

    call_id = request(fan, creator)["callId"]
    assert post(creator, call_id, "cancel")[0] == 403
    status, body = post(fan, call_id, "cancel")
    assert status == 200 and body["state"] == "cancelled"
    assert len(outbox(realtime.user_channel(creator.id), "call:cancelled")) == 1
    assert post(creator, call_id, "accept")[0] == 409
    assert balance(fan) == 100


def test_end_settles_and_is_idempotent(fan: Person, creator: Person) -> None:
    call_id = request(fan, creator)["callId"]
    post(creator, call_id, "accept")
    status, first = post(fan, call_id, "end")
    assert status == 200
    assert first["state"] == "ended" and first["endReason"] == "hangup" and first["endedBy"] == str(fan.id)
    assert first["totalCost"] == 10 and first["durationMinutes"] == 1
    status, again = post(creator, call_id, "end")
    assert status == 200 and again == first
    ended = [e["channel"] for e in outbox(event="call:ended")]
    assert sorted(ended) == sorted(
        [
            realtime.user_channel(fan.id),
            realtime.user_channel(creator.id),
            realtime.call_channel(call_row(call_id).channel),
        ]
    )
    assert minute_charges(call_id) == [f"call:{call_id}:minute:1"]


def test_end_on_a_ringing_call_cancels_or_declines_it(fan: Person, creator: Person) -> None:
    call_id = request(fan, creator)["callId"]
    assert post(creator, call_id, "end")[1]["state"] == "declined"
    call_id = request(fan, creator)["callId"]
    assert post(fan, call_id, "end")[1]["state"] == "cancelled"


def test_an_unanswered_call_is_missed_after_45_seconds(
    fan: Person, creator: Person, outsider: Person
) -> None:
    t0 = real_now()
    call_id = place(fan, creator, t0)
    assert in_tx(calls.expire_stale_rings, t0 + seconds(44)) == 0
    assert in_tx(calls.expire_stale_rings, t0 + seconds(45)) == 1
    row = call_row(call_id)
    assert row.state == "missed" and row.end_reason == "no_answer" and row.ended_at == t0 + seconds(45)
    states = [e["payload"]["state"] for e in outbox(event="call:cancelled")]
    assert states == ["missed", "missed"]
    # The creator is free again: a new request rings.
    assert request(outsider, creator)["state"] == "ringing"


def test_a_ring_past_its_deadline_cannot_be_accepted_and_frees_the_creator(
    fan: Person, creator: Person, outsider: Person
) -> None:
    t0 = real_now() - seconds(50)
    call_id = place(fan, creator, t0)
    status, body = post(creator, str(call_id), "accept")
    assert status == 409 and body["code"] == "CALL_EXPIRED"
    r = client("calls/[call_id]/status.py").get(f"/api/calls/{call_id}/status", headers=fan.headers)
    assert r.json()["state"] == "missed"
    # A new request expires the stale ring instead of answering CREATOR_BUSY.
    assert request(outsider, creator)["state"] == "ringing"
    assert call_row(call_id).state == "missed"


def test_status_pending_and_history_show_my_calls(fan: Person, creator: Person, outsider: Person) -> None:
    call_id = request(fan, creator)["callId"]
    pending = client("calls/pending.py").get("/api/calls/pending", headers=creator.headers).json()["calls"]
    assert [(c["callId"], c["direction"], c["otherParty"]["id"]) for c in pending] == [
        (call_id, "incoming", str(fan.id))
    ]
    assert (
        client("calls/pending.py")
        .get("/api/calls/pending", headers=fan.headers)
        .json()["calls"][0]["direction"]
        == "outgoing"
    )
    assert (
        client("calls/pending.py").get("/api/calls/pending", headers=outsider.headers).json()["calls"] == []
    )
    post(creator, call_id, "accept")
    post(fan, call_id, "end")
    status = (
        client("calls/[call_id]/status.py")
        .get(f"/api/calls/{call_id}/status", headers=creator.headers)
        .json()
    )
    assert status["state"] == "ended" and status["totalCost"] == 10 and status["endReason"] == "hangup"
    assert status["connectedAt"] is not None and status["endedAt"] is not None
    history = client("calls/history.py").get("/api/calls/history?limit=1", headers=fan.headers).json()
    assert history["total"] == 1 and history["hasMore"] is False and history["calls"][0]["callId"] == call_id
    assert client("calls/history.py").get("/api/calls/history", headers=outsider.headers).json()["total"] == 0
    assert (
        client("calls/history.py").get("/api/calls/history?limit=101", headers=fan.headers).status_code == 422
    )


@pytest.mark.parametrize(("method", "relpath", "url"), CALL_ROUTES)
def test_outsiders_get_404_on_every_call_route(
    fan: Person, creator: Person, outsider: Person, method: str, relpath: str, url: str
) -> None:
    call_id = request(fan, creator)["callId"]
    r = client(relpath).request(method, url.format(id=call_id), headers=outsider.headers)
    assert r.status_code == 404 and r.json()["code"] == "CALL_NOT_FOUND"
    assert call_row(call_id).state == "ringing"
    anonymous = client(relpath).request(method, url.format(id=call_id))
    assert anonymous.status_code == 401


def test_heartbeat_reports_billing_and_never_fails_a_participant(fan: Person, creator: Person) -> None:
    call_id = request(fan, creator)["callId"]
    status, body = post(fan, call_id, "heartbeat")
    assert status == 200 and body["state"] == "ringing" and body["billing"]["lastBilledMinute"] == 0
    post(creator, call_id, "accept")
    status, body = post(creator, call_id, "heartbeat")
    assert body["state"] == "active" and body["billing"]["currentMinute"] == 1
    assert body["billing"]["lastBilledMinute"] == 1 and body["billing"]["tokensPerMinute"] == 10
    assert 55 <= body["billing"]["nextBillingIn"] <= 60
    post(fan, call_id, "end")
    status, body = post(fan, call_id, "heartbeat")
    assert status == 200 and body["state"] == "ended"
