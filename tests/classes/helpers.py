"""Classes test helpers: the /classes functions in-process, a class scheduled and taken live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from lib import db
from tests.conftest import TestUser
from tests.support import functions

FILES = {
    "classes": "classes.py",
    "enrolled": "classes/enrolled.py",
    "enrolled_of": "classes/enrolled/[user_id].py",
    "hosting_of": "classes/hosting/[user_id].py",
    "join": "classes/[class_id]/join.py",
    "attend": "classes/[class_id]/mark-attendance.py",
    "start": "classes/[class_id]/start-stream.py",
    "reviews": "classes/[class_id]/reviews.py",
}


def call(name: str, method: str, path: str, who: TestUser | None = None, **kwargs: Any) -> httpx.Response:
    """One request to one function (under /api/v1, as the frontend calls it)."""
    headers = who.headers if who else {}
    return functions.client(FILES[name]).request(method, "/api/v1" + path, headers=headers, **kwargs)


def scheduler_body(start: datetime | None = None, **over: Any) -> dict[str, Any]:
    """Exactly what ClassScheduler.js:159 sends (numbers from parseInt, startTime from toISOString)."""
    at = start or datetime.now(UTC) + timedelta(days=1)
    body: dict[str, Any] = {
        "title": "Morning flow",
        "description": "Gentle yoga",
        "category": "wellness",
        "startTime": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "duration": 60,
        "maxParticipants": 20,
        "currentParticipants": 0,
        "tokenPrice": 15,
        "tags": ["yoga", "calm"],
        "requirements": "A mat",
        "whatToExpect": "Stretching",
        "coverImage": None,
        "isLive": False,
        "creator": {
            "id": "x",
            "username": "c",
            "displayName": "C",
            "avatar": None,
            "rating": 0,
            "reviewCount": 0,
        },
    }
    body.update(over)
    return body


def schedule(creator: TestUser, **over: Any) -> dict[str, Any]:
    """POST /classes as the creator; the class (asserting 201)."""
    r = call("classes", "POST", "/classes", creator, json=scheduler_body(**over))
    assert r.status_code == 201, r.text
    cls: dict[str, Any] = r.json()["class"]
    return cls


def join(fan: TestUser, class_id: str) -> httpx.Response:
    """ClassesPage.js:159: {userId, classId}."""
    return call(
        "join", "POST", f"/classes/{class_id}/join", fan, json={"userId": str(fan.id), "classId": class_id}
    )


def start(creator: TestUser, class_id: str) -> dict[str, Any]:
    """POST /classes/{id}/start-stream (no body, as ClassesPage.js:205); the answer (asserting 200)."""
    r = call("start", "POST", f"/classes/{class_id}/start-stream", creator)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def attend(fan: TestUser, class_id: str) -> httpx.Response:
    """StreamingLayout.js:161: POST with no body."""
    return call("attend", "POST", f"/classes/{class_id}/mark-attendance", fan)


def balance(user: TestUser) -> int:
    """The user's balance as stored."""
    with db.transaction() as conn:
        row = conn.execute("SELECT token_balance FROM users WHERE id = %(u)s", {"u": user.id}).fetchone()
    assert row is not None
    return int(row["token_balance"])


def class_postings(class_id: str) -> int:
    """Ledger debits that paid for the class."""
    with db.transaction() as conn:
        row = conn.execute(
            """SELECT count(*) AS n FROM token_transactions
               WHERE reference_type = 'class' AND reference_id = %(c)s AND amount < 0""",
            {"c": class_id},
        ).fetchone()
    assert row is not None
    return int(row["n"])
