"""The dashboard, badges, CreatorAnalytics stats and the telemetry beacon, as the frontend calls them."""

from __future__ import annotations

import json
import logging
import uuid

from lib import db, ledger
from tests import conftest
from tests.analytics.test_earnings import get
from tests.conftest import MakeUser
from tests.support import functions

OVERVIEW = "analytics/creator/[creator_id]/overview.py"
TOP_FANS = "analytics/creator/[creator_id]/top-fans.py"
BADGES = "loyalty/badges/[user_id].py"


def tip(fan: conftest.TestUser, creator: conftest.TestUser, amount: int, gift: str | None = None) -> None:
    with db.transaction() as conn:
        conn.execute(
            "UPDATE users SET token_balance = token_balance + %(a)s WHERE id = %(f)s",
            {"a": amount, "f": fan.id},
        )
        conn.execute(
            """INSERT INTO token_transactions (user_id, type, amount, balance_after, reference_type, reference_id)
               SELECT id, 'adjustment', %(a)s, token_balance, 'test', 'seed' FROM users WHERE id = %(f)s""",
            {"a": amount, "f": fan.id},
        )
        ledger.transfer(
            conn, from_user=fan.id, to_user=creator.id, amount=amount, kind="tip", reference_type="tip",
            reference_id="t", idempotency_key=str(uuid.uuid4()), metadata={"gift_type": gift} if gift else None,
        )  # fmt: skip


def test_dashboard_overview_and_top_fans(make_user: MakeUser) -> None:
    creator, big, small = make_user(role="creator"), make_user(), make_user()
    tip(big, creator, 2500)
    tip(small, creator, 120, gift="rose")
    r = get(
        OVERVIEW, f"/analytics/creator/{creator.id}/overview?period=7d", creator
    )  # HybridCreatorDashboard:720
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["revenue"]["total"] == 2620 and body["revenue"]["previous"] == 0
    for group, names in {
        "followers": ("total", "previous", "trend"),
        "engagement": ("rate", "previous", "trend", "videoCalls", "messages", "tips", "gifts"),
        "sessions": ("avgDuration", "previousAvg", "trend"),
    }.items():
        for name in names:
            assert isinstance(body[group][name], int | float), (group, name)
    assert body["engagement"]["tips"] == 1 and body["engagement"]["gifts"] == 1
    assert body["today"] == {"earnings": 2620, "tips": 1} and body["monthly"]["earnings"] == 2620
    for group, name in (
        ("pending", "requests"),
        ("active", "streams"),
        ("unread", "messages"),
        ("vips", "count"),
    ):
        assert isinstance(body[group][name], int)
    assert body["vips"]["count"] == 1
    assert len(body["revenueHistory"]) == 7 and body["revenueHistory"][-1]["revenue"] == 2620
    fans = get(TOP_FANS, f"/analytics/creator/{creator.id}/top-fans", creator).json()["fans"]  # :793
    assert [(f["id"], f["totalSpent"], f["tier"]) for f in fans] == [
        (str(big.id), 2500, "gold"),
        (str(small.id), 120, "bronze"),
    ]
    assert all(isinstance(f["name"], str) and isinstance(f["username"], str) for f in fans)
    stranger, admin = make_user(role="creator"), make_user(role="admin")
    for file, path in ((OVERVIEW, "overview?period=7d"), (TOP_FANS, "top-fans")):
        assert get(file, f"/analytics/creator/{creator.id}/{path}", stranger).status_code == 403
        assert get(file, f"/analytics/creator/{creator.id}/{path}", admin).status_code == 200
        assert get(file, f"/analytics/creator/{uuid.uuid4()}/{path}", admin).status_code == 404


def test_loyalty_badges_as_dual_badge_display_reads_them(make_user: MakeUser) -> None:
    creator, fan, viewer = make_user(role="creator"), make_user(), make_user()
    tip(fan, creator, 600)
    # apiClient.get drops its params: the page reads response.data.badges of /loyalty/badges/{userId}.
    mine = get(BADGES, f"/loyalty/badges/{fan.id}", fan).json()
    assert mine["data"]["badges"] == mine["badges"]
    loyalty = mine["badges"]["loyalty"]
    assert (loyalty["level"], loyalty["totalTokens"], loyalty["supportDays"]) == ("silver", 600, 1)
    assert isinstance(loyalty["emoji"], str) and isinstance(loyalty["perks"], list)
    assert isinstance(loyalty["totalSpend"], float)
    seen_by_creator = get(BADGES, f"/loyalty/badges/{fan.id}", creator).json()["data"]["badges"]["loyalty"]
    assert (seen_by_creator["level"], seen_by_creator["totalTokens"]) == ("silver", 600)
    other = get(BADGES, f"/loyalty/badges/{fan.id}?creatorId={creator.id}", viewer).json()["badges"][
        "loyalty"
    ]
    assert (other["level"], other["totalTokens"], other["totalSpend"]) == ("silver", None, None)
    none = get(BADGES, f"/loyalty/badges/{fan.id}", viewer).json()["badges"]["loyalty"]
    assert none["level"] == "none"  # the fan's level with this viewer
    assert get(BADGES, f"/loyalty/badges/{uuid.uuid4()}", viewer).status_code == 404


def test_creator_analytics_stats(make_user: MakeUser) -> None:
    creator, fan = make_user(role="creator"), make_user()
    tip(fan, creator, 30)
    tip(fan, creator, 50, gift="rose")
    for period in ("24h", "7d", "30d", "90d"):  # CreatorAnalytics.js:72-90
        tips = get("tips/stats.py", f"/tips/stats?period={period}", creator).json()["stats"]["received"]
        assert tips == {"count": 1, "total_amount": 30}
        gifts = get("gifts/stats.py", f"/gifts/stats?period={period}", creator).json()["stats"]["received"]
        assert gifts == {"count": 1, "total_value": 50}
        subs = get("subscriptions/analytics.py", f"/subscriptions/analytics?period={period}", creator).json()
        assert subs["analytics"]["active_subscribers"]["total"] == 0
        assert subs["analytics"]["revenue"] == {
            "monthly_recurring": 0,
            "lifetime_revenue": 0,
            "period_revenue": 0,
        }
        assert subs["analytics"]["growth"] == {"new_subscribers": 0, "renewal_rate": 0}
        polls = get("polls/user/stats.py", f"/polls/user/stats?period={period}", creator).json()
        assert polls["stats"]["created"] == {"count": 0, "total_votes_received": 0}
    # The per-creator leaderboard route is still its own function.
    assert get("tips/stats/[creator_id].py", f"/tips/stats/{creator.id}?period=today", fan).status_code == 200


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


def test_telemetry_beacon_forms(make_user: MakeUser) -> None:
    handler = _Lines()
    logging.getLogger("digis.telemetry").addHandler(handler)
    try:
        c = functions.client("telemetry.py")
        beacon = {  # VideoCall.js:1614
            "event": "call_end", "reason": "pagehide", "duration": 83, "ts": 1764870000000,
            "userAgent": "Mozilla/5.0 (private)", "visibilityState": "hidden", "channel": "call_abc123",
        }  # fmt: skip
        raw = json.dumps(beacon)
        forms = [
            {
                "content": raw,
                "headers": {"Content-Type": "text/plain;charset=UTF-8"},
            },  # sendBeacon of a string
            {"content": raw, "headers": {"Content-Type": "application/json"}},  # Blob / XHR / fetch keepalive
            {"content": raw},
            {"content": "not json", "headers": {"Content-Type": "text/plain"}},
            {"content": "[1,2]", "headers": {"Content-Type": "application/json"}},
            {"content": "x" * 10_000, "headers": {"Content-Type": "text/plain"}},
            {"content": json.dumps({"event": "<script>", "duration": -1, "channel": "a b"})},
        ]
        for form in forms:
            r = c.post("/api/v1/telemetry", **form)  # type: ignore[arg-type]
            assert r.status_code == 204, (form, r.text)
    finally:
        logging.getLogger("digis.telemetry").removeHandler(handler)
    lines = handler.lines
    kept = {"msg": "telemetry", "event": "call_end", "reason": "pagehide", "durationS": 83,
            "visibilityState": "hidden", "channel": "call_abc123", "clientTs": 1764870000000}  # fmt: skip
    assert lines[:3] == [kept] * 3
    assert [line.get("dropped") for line in lines[3:6]] == ["malformed", "malformed", "too_large"]
    assert lines[6] == {"msg": "telemetry", "event": "unknown"}
    assert "Mozilla" not in json.dumps(lines)


def test_telemetry_over_the_ip_limit_is_dropped_not_refused(make_user: MakeUser) -> None:
    handler = _Lines()
    logging.getLogger("digis.telemetry").addHandler(handler)
    try:
        c = functions.client("telemetry.py")
        headers = {"x-real-ip": "203.0.113.77", "Content-Type": "text/plain"}
        codes = {c.post("/api/telemetry", content='{"event":"call_end"}', headers=headers).status_code
                 for _ in range(305)}  # fmt: skip
    finally:
        logging.getLogger("digis.telemetry").removeHandler(handler)
    assert codes == {204}
    assert sum(1 for line in handler.lines if line.get("dropped") == "rate_limited") == 5
