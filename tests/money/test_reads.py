"""GET /tokens/balance, /tokens/transactions, /tokens/packages."""

from __future__ import annotations

from typing import Any

import pytest

from lib import config, db, ledger
from lib.payments import packages
from tests.conftest import MakeUser
from tests.support.functions import client


def get(path: str, fn: str, user: Any = None, **params: Any) -> Any:
    return client(fn).get(path, params=params, headers=user.headers if user else {})


def test_balance_shows_tokens_usd_and_debt(make_user: MakeUser) -> None:
    fan = make_user(balance=123)
    r = get("/api/v1/tokens/balance", "tokens/balance.py", fan)
    assert r.status_code == 200
    assert r.json() == {"balance": 123, "usdEstimate": 6.15, "tokenValue": 0.05, "debt": 0}


def test_balance_needs_a_token() -> None:
    assert get("/api/tokens/balance", "tokens/balance.py").status_code == 401


def test_transactions_are_mine_only_newest_first_and_paginated(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator", balance=7)
    with db.transaction() as conn:
        for n in range(5):
            ledger.transfer(
                conn,
                from_user=fan.id,
                to_user=creator.id,
                amount=n + 1,
                kind="tip",
                reference_type="tip",
                reference_id=f"tip-{n}",
                idempotency_key=f"k{n}",
            )
    r = get("/api/tokens/transactions", "tokens/transactions.py", fan, limit=2, offset=1)
    body = r.json()
    assert r.status_code == 200
    assert (body["total"], body["limit"], body["offset"], body["hasMore"]) == (6, 2, 1, True)
    assert [(t["type"], t["amount"], t["balance_after"]) for t in body["transactions"]] == [
        ("tip", -4, 90),
        ("tip", -3, 94),
    ]
    assert body["transactions"][0]["reference"] == {"type": "tip", "id": "tip-3"}
    last = get("/api/tokens/transactions", "tokens/transactions.py", fan, limit=100, offset=5).json()
    assert [t["type"] for t in last["transactions"]] == ["adjustment"] and last["hasMore"] is False
    theirs = get("/api/tokens/transactions", "tokens/transactions.py", creator).json()
    assert theirs["total"] == 6 and all(t["amount"] > 0 for t in theirs["transactions"])


@pytest.mark.parametrize("params", [{"limit": 101}, {"limit": 0}, {"offset": -1}])
def test_transactions_page_bounds_are_422(make_user: MakeUser, params: dict[str, int]) -> None:
    assert get("/api/tokens/transactions", "tokens/transactions.py", make_user(), **params).status_code == 422


def test_packages_are_api_md_defaults() -> None:
    r = get("/api/tokens/packages", "tokens/packages.py")
    assert r.status_code == 200
    packs = r.json()["packages"]
    assert [(p["tokens"], p["priceCents"], p["price"]) for p in packs] == [
        (50, 500, 5.0),
        (200, 1900, 19.0),
        (433, 3900, 39.0),
        (812, 6900, 69.0),
        (1488, 11900, 119.0),
        (4986, 34900, 349.0),
        (8446, 54900, 549.0),
    ]
    assert packs[0]["bonus"] == 0 and packs[1]["bonus"] == 10 and not any(p["popular"] for p in packs)


def test_packages_can_be_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_PACKAGES", '[{"tokens": 100, "priceCents": 999, "popular": true}]')
    config.reset()
    try:
        assert [(p.tokens, p.priceCents, p.popular, p.price) for p in packages.token_packages()] == [
            (100, 999, True, 9.99)
        ]
    finally:
        monkeypatch.undo()
        config.reset()
