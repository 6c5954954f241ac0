"""Virtual gifts: GET /tokens/catalog and POST /stream-features/gift as VirtualGifts.js uses them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from lib import config, ledger, realtime
from tests.conftest import MakeUser, SetEnv
from tests.money.conftest import assert_books_balance
from tests.support.functions import client
from tests.tips.helpers import balance, go_live, ledger_rows, outbox, send_gift, stream_tips, tips_rows

GIFT_FIELDS = {
    "giftId": str,
    "tipId": str,
    "giftType": str,
    "quantity": int,
    "unitCost": int,
    "totalCost": int,
    "amountTokens": int,
    "new_balance": int,
    "creatorCut": int,
    "platformFee": int,
}


def catalog(**headers: str) -> list[dict[str, Any]]:
    r = client("tokens/catalog.py").get("/api/v1/tokens/catalog", headers=headers)
    assert r.status_code == 200, r.text
    body: list[dict[str, Any]] = r.json()
    return body


def price(gift_type: str) -> int:
    return next(g["cost"] for g in catalog() if g["id"] == gift_type)


def test_catalog_is_a_bare_array_the_page_can_group_by_rarity(make_user: MakeUser) -> None:
    fan = make_user()
    gifts = catalog(**fan.headers)
    assert gifts == catalog()  # public: the same with or without a token
    assert isinstance(gifts, list) and len({g["id"] for g in gifts}) == len(gifts) > 0
    for g in gifts:
        assert {k: type(v) for k, v in g.items()} == {
            "id": str,
            "name": str,
            "emoji": str,
            "cost": int,
            "rarity": str,
        }
        assert g["cost"] > 0
    # VirtualGifts.js:147-151 groups common / rare+epic / legendary+mythic; every group has gifts.
    groups = [{"common"}, {"rare", "epic"}, {"legendary", "mythic"}]
    assert all(any(g["rarity"] in group for g in gifts) for group in groups)
    assert {g["rarity"] for g in gifts} <= set().union(*groups)


def test_gift_as_virtual_gifts_sends_it_debits_the_catalog_price(
    make_user: MakeUser, set_env: SetEnv
) -> None:
    set_env(PLATFORM_FEE_PERCENT="20")
    assert config.get_settings().platform_fee_percent == Decimal(20)
    fan, host = make_user(balance=1000), make_user(role="creator")
    stream = go_live(host)
    cost = price("rocket")
    # VirtualGifts.js:205-217, exactly.
    body = {"channel": stream["channel"], "creatorId": str(host.id), "giftType": "rocket", "quantity": 1}
    r = send_gift(fan, body)
    assert r.status_code == 200, r.text
    answer = r.json()
    for field, kind in GIFT_FIELDS.items():
        assert isinstance(answer[field], kind), field
    cut, fee = ledger.split_fee(cost)
    assert (cut, fee) == (cost - cost * 20 // 100, cost * 20 // 100)
    assert answer["new_balance"] == balance(fan.id) == 1000 - cost
    assert (answer["totalCost"], answer["creatorCut"], answer["platformFee"]) == (cost, cut, fee)
    assert balance(host.id) == cut and balance(ledger.PLATFORM_USER_ID) >= fee
    assert answer["gift"]["id"] == "rocket" and answer["streamId"] == stream["id"]
    [row] = tips_rows(fan.id)
    assert (row["gift_type"], row["gift_quantity"], row["amount"]) == ("rocket", 1, cost)
    assert stream_tips(stream["id"]) == cost

    [gift_event] = outbox("gift-received")
    assert gift_event["channel"] == realtime.stream_channel(stream["channel"])
    payload = gift_event["payload"]
    # The stream pages read channel, quantity, totalValue, emoji and sender.
    assert (payload["channel"], payload["quantity"], payload["totalValue"]) == (stream["channel"], 1, cost)
    assert (payload["emoji"], payload["sender"], payload["giftType"]) == ("🚀", fan.username, "rocket")
    balances = {e["channel"]: e["payload"] for e in outbox("balance:update")}
    assert balances[realtime.user_channel(fan.id)] == {
        "balance": 1000 - cost,
        "delta": -cost,
        "reason": "gift_sent",
    }
    assert balances[realtime.user_channel(host.id)]["delta"] == cut
    assert outbox("tip-received") == []
    assert_books_balance()


def test_quantity_multiplies_and_client_prices_are_ignored(make_user: MakeUser) -> None:
    fan, host = make_user(balance=5000), make_user(role="creator")
    channel = go_live(host)["channel"]
    cost = price("crown")
    body = {
        "channel": channel,
        "creatorId": str(host.id),
        "giftType": "crown",
        "quantity": 3,
        "cost": 1,
        "price": 1,
        "amount": 1,
        "amountTokens": 1,
        "totalCost": 1,
        "tokens": 1,
    }
    r = send_gift(fan, body)
    assert r.status_code == 200, r.text
    assert (r.json()["unitCost"], r.json()["totalCost"]) == (cost, 3 * cost)
    assert balance(fan.id) == 5000 - 3 * cost
    [debit] = [p for p in ledger_rows(fan.id) if p["amount"] < 0]
    assert debit["amount"] == -3 * cost


def test_the_creator_comes_from_the_channel_when_the_page_has_none(make_user: MakeUser) -> None:
    fan, host = make_user(balance=100), make_user(role="creator")
    channel = go_live(host)["channel"]
    # targetCreator is null: JSON.stringify drops creatorId.
    r = send_gift(fan, {"channel": channel, "giftType": "heart", "quantity": 1})
    assert r.status_code == 200, r.text
    assert balance(host.id) == price("heart")


def test_no_creator_and_no_live_stream_is_400(make_user: MakeUser) -> None:
    fan = make_user(balance=100)
    r = send_gift(fan, {"channel": "stream-gone", "giftType": "heart", "quantity": 1})
    assert (r.status_code, r.json()["code"]) == (400, "STREAM_NOT_LIVE")
    assert tips_rows(fan.id) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"giftType": "unicorn"}, "giftType"),
        ({"giftType": ""}, "giftType"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": 101}, "quantity"),
        ({"quantity": "1"}, "quantity"),
        ({"quantity": 1.5}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"giftType": "island", "quantity": 41}, "quantity"),  # 102,500 tokens: over one request's limit
        ({"channel": ""}, "channel"),
        ({"creatorId": "not-a-uuid"}, "creatorId"),
    ],
)
def test_bad_gifts_are_422_naming_the_field(make_user: MakeUser, change: dict[str, Any], field: str) -> None:
    fan, host = make_user(balance=200_000), make_user(role="creator")
    body = {"channel": "c", "creatorId": str(host.id), "giftType": "heart", "quantity": 1, **change}
    r = send_gift(fan, body)
    assert r.status_code == 422, r.text
    assert field in {e["field"] for e in r.json()["errors"]}
    assert tips_rows(fan.id) == [] and balance(fan.id) == 200_000


def test_largest_gift_request_is_accepted(make_user: MakeUser) -> None:
    fan, host = make_user(balance=100_000), make_user(role="creator")
    channel = go_live(host)["channel"]
    r = send_gift(fan, {"channel": channel, "creatorId": str(host.id), "giftType": "island", "quantity": 40})
    assert r.status_code == 200 and r.json()["new_balance"] == 0


def test_insufficient_balance_is_402_and_writes_nothing(make_user: MakeUser) -> None:
    fan, host = make_user(balance=10), make_user(role="creator")
    channel = go_live(host)["channel"]
    before = outbox()
    r = send_gift(fan, {"channel": channel, "creatorId": str(host.id), "giftType": "diamond", "quantity": 1})
    assert r.status_code == 402
    assert (r.json()["current_balance"], r.json()["required_amount"]) == (10, price("diamond"))
    assert tips_rows(fan.id) == [] and ledger_rows(fan.id) == [] and outbox() == before
    assert balance(host.id) == 0


def test_a_gift_needs_a_token_and_cannot_go_to_oneself(make_user: MakeUser) -> None:
    host = make_user(role="creator", balance=100)
    channel = go_live(host)["channel"]
    body = {"channel": channel, "giftType": "heart", "quantity": 1}
    assert client("stream-features/gift.py").post("/api/stream-features/gift", json=body).status_code == 401
    r = send_gift(host, body)
    assert (r.status_code, r.json()["code"]) == (400, "SELF_TIP")
