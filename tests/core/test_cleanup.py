"""GET|POST /api/cron/cleanup: cron-secret only; every step reported; drift in the books is flagged."""

from __future__ import annotations

from lib import db
from tests.conftest import TEST_ENV, MakeUser
from tests.support.functions import client

CRON = {"Authorization": f"Bearer {TEST_ENV['CRON_SECRET']}"}


def test_cleanup_needs_the_cron_secret(clean: None) -> None:
    c = client("cron/cleanup.py")
    assert c.get("/api/cron/cleanup").status_code == 401
    assert c.post("/api/v1/cron/cleanup", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_cleanup_runs_every_step_and_flags_ledger_drift(make_user: MakeUser) -> None:
    fan = make_user(balance=40)
    c = client("cron/cleanup.py")
    r = c.get("/api/cron/cleanup", headers=CRON)
    assert r.status_code == 200, r.text
    body = r.json()
    expected = {
        "ringsMissed",
        "deadCalls",
        "staleStreams",
        "ledger",
        "outboxFlushed",
        "payoutTransfersRetried",
    }
    assert expected <= set(body["steps"])
    assert body["steps"]["ledger"]["result"]["ok"] is True
    # A cached balance that no ledger row explains is drift: reported, not silently accepted.
    with db.transaction() as conn:
        conn.execute("UPDATE users SET token_balance = token_balance + 5 WHERE id = %(id)s", {"id": fan.id})
    drifted = c.post("/api/cron/cleanup", headers=CRON).json()
    assert drifted["ok"] is False
    assert drifted["steps"]["ledger"]["result"]["balanceDrift"] == 1
