"""Sign-up and profile rows (#2, #6-#9, #11, #12): each page's exact request, and every field it reads, typed."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

from tests import conftest
from tests.conftest import MakeUser
from tests.frontend_profile.conftest import sql
from tests.support import functions
from tests.support.tokens import bearer, make_token

CREATE = "auth/create-profile.py"
SYNC = "auth/sync-user.py"
PROFILE = "users/profile.py"
RATES = "creators/rates.py"
STATS = "creators/stats.py"


def _new_identity(email: str) -> tuple[uuid.UUID, dict[str, str]]:
    uid = uuid.uuid4()
    return uid, bearer(make_token(uid, email=email))


def _mobile_signup_body(username: str, email: str) -> dict[str, Any]:
    """MobileLandingPage.js:58-71, verbatim."""
    name = username or email.split("@")[0]
    return {"username": name, "displayName": name, "bio": "", "profilePicture": None, "accountType": "user"}


def _row(user_id: uuid.UUID) -> dict[str, Any]:
    (row,) = sql("SELECT * FROM users WHERE id = %(id)s", {"id": user_id})
    return row


# ---- #2 POST /auth/create-profile ---------------------------------------------------------------------------


def test_mobile_signup_creates_the_profile_and_a_retry_is_the_same(clean: None) -> None:
    uid, headers = _new_identity("new.person@example.test")
    client = functions.client(CREATE)
    first = client.post(
        "/api/v1/auth/create-profile", headers=headers, json=_mobile_signup_body("Luna_Star", "")
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["success"] is True and body["isNewUser"] is True
    assert body["user"]["username"] == "luna_star" and body["user"]["display_name"] == "Luna_Star"
    assert body["user"]["is_creator"] is False and body["user"]["role"] == "fan"
    again = client.post(
        "/api/v1/auth/create-profile", headers=headers, json=_mobile_signup_body("Luna_Star", "")
    )
    assert (
        again.status_code == 200
        and again.json()["user"] == body["user"]
        and again.json()["isNewUser"] is False
    )
    assert sql("SELECT count(*) AS n FROM users WHERE id = %(id)s", {"id": uid}) == [{"n": 1}]
    # the sign-up then syncs: the same row
    synced = functions.client(SYNC).post(
        "/api/auth/sync-user", headers=headers, json={"supabaseId": str(uid)}
    )
    assert synced.json()["user"]["username"] == "luna_star"


def test_signup_without_a_username_uses_the_email_and_never_fails_on_the_name(make_user: MakeUser) -> None:
    taken = make_user(username="taken_name")
    # The page falls back to the email's local part, which may hold dots or capitals.
    _uid, headers = _new_identity("Mary.Jane+x@example.test")
    r = functions.client(CREATE).post(
        "/api/auth/create-profile", headers=headers, json=_mobile_signup_body("", "Mary.Jane+x@example.test")
    )
    assert r.status_code == 200, r.text
    assert r.json()["user"]["username"] == "mary_jane_x"
    # A taken or reserved name still signs up, under another name.
    for wanted in (taken.username, "admin", "a"):
        _uid, headers = _new_identity(f"{uuid.uuid4().hex[:8]}@example.test")
        r = functions.client(CREATE).post(
            "/api/auth/create-profile", headers=headers, json=_mobile_signup_body(wanted, "")
        )
        assert r.status_code == 200, r.text
        assert r.json()["user"]["username"] not in (taken.username, "admin")
    assert _row(taken.id)["email"] == taken.email


def test_signup_after_an_earlier_request_made_the_row_still_takes_the_chosen_name(clean: None) -> None:
    uid, headers = _new_identity("early@example.test")
    functions.client(SYNC).post("/api/auth/sync-user", headers=headers, json={})  # row named from the email
    assert _row(uid)["username"] == "early"
    r = functions.client(CREATE).post(
        "/api/auth/create-profile", headers=headers, json=_mobile_signup_body("chosen_one", "")
    )
    assert r.status_code == 200 and r.json()["user"]["username"] == "chosen_one"
    assert r.json()["isNewUser"] is False


def test_signup_cannot_make_a_creator_or_an_admin(clean: None) -> None:
    uid, headers = _new_identity("sneaky@example.test")
    body = {
        **_mobile_signup_body("sneaky", ""),
        "accountType": "creator",
        "role": "admin",
        "is_creator": True,
    }
    r = functions.client(CREATE).post("/api/auth/create-profile", headers=headers, json=body)
    assert r.status_code == 200, r.text
    assert (_row(uid)["role"], _row(uid)["is_creator"]) == ("fan", False)


def test_signup_with_a_bad_picture_is_a_clear_422(clean: None) -> None:
    uid, headers = _new_identity("pic@example.test")
    body = {**_mobile_signup_body("pic_user", ""), "profilePicture": "javascript:alert(1)"}
    r = functions.client(CREATE).post("/api/auth/create-profile", headers=headers, json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "profilePicture"
    assert sql("SELECT * FROM users WHERE id = %(id)s", {"id": uid}) == []


# ---- #9 GET /users/profile: what each page reads ---------------------------------------------------------------


def _get(user: conftest.TestUser, uid: uuid.UUID | None = None) -> dict[str, Any]:
    path = "/api/v1/users/profile" + (f"?uid={uid}" if uid else "")
    r = functions.client(PROFILE).get(path, headers=user.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_improved_profile_reads_every_field_with_its_type(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    sql(
        """UPDATE users SET interests = '{Gaming,Music}', state = 'CA', country = 'US', text_message_price = 1,
                  image_message_price = 3, video_message_price = 5, voice_memo_price = 2, stream_price = 4,
                  message_price = 2 WHERE id = %(id)s""",
        {"id": creator.id},
    )
    body = _get(creator, creator.id)  # ImprovedProfile.js:192 asks for ?uid=<me>
    for name in ("display_name", "username", "creator_type", "state", "country"):
        assert body[name] is None or isinstance(body[name], str), name
    assert body["interests"] == ["Gaming", "Music"] and (body["state"], body["country"]) == ("CA", "US")
    for name in ("stream_price", "video_price", "voice_price", "message_price", "text_message_price",
                 "image_message_price", "video_message_price", "voice_memo_price"):  # fmt: skip
        assert type(body[name]) is int, name
    assert body["show_token_balance"] is False  # ProfilePage.js:61


def test_video_call_reads_price_per_min_in_usd(make_user: MakeUser) -> None:
    fan = make_user()
    for tokens in (1, 7, 10, 11, 150, 9999):
        creator = make_user(role="creator", video_price=tokens)
        body = _get(fan, creator.id)  # VideoCall.js:234 and :839
        assert isinstance(body["price_per_min"], float)
        # VideoCall.js:247: Math.ceil(pricePerMin / 0.05) must give back the creator's tokens per minute
        assert math.ceil(body["price_per_min"] / 0.05) == tokens
        assert body["username"] == creator.username  # useUsername.js
        assert "token_balance" not in body and "email" not in body and "state" not in body


def test_price_per_min_follows_the_token_value_setting(make_user: MakeUser, set_env: Any) -> None:
    set_env(TOKEN_USD_VALUE="0.10")
    creator = make_user(role="creator", video_price=10)
    assert _get(creator)["price_per_min"] == 1.0


# ---- #6-#8 PATCH, POST, PUT /users/profile -------------------------------------------------------------------


def _improved_profile_put(user: conftest.TestUser) -> dict[str, Any]:
    """ImprovedProfile.js:511-541 for a creator (parseFloat of the inputs)."""
    return {
        "uid": str(user.id), "email": user.email, "username": user.username, "display_name": "Star",
        "bio": "about me", "is_creator": True, "state": "NY", "country": "US",
        "profile_pic_url": "https://cdn.example.test/a.png", "banner_url": "https://cdn.example.test/b.png",
        "creator_type": "Music", "interests": ["Music", "Art"], "stream_price": 5, "video_price": 8,
        "voice_price": 6, "message_price": 2, "text_message_price": 1, "image_message_price": 3,
        "video_message_price": 5, "voice_memo_price": 2,
    }  # fmt: skip


@pytest.mark.parametrize("method", ["PUT", "PATCH", "POST"])
def test_every_method_saves_the_same_partial_update(make_user: MakeUser, method: str) -> None:
    creator = make_user(role="creator")
    r = functions.client(PROFILE).request(
        method, "/api/v1/users/profile", headers=creator.headers, json=_improved_profile_put(creator)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["data"]["success"] is True  # HybridCreatorDashboard.js:1480
    assert sorted(body["ignored"]) == ["email", "is_creator", "uid"]
    saved = _get(creator)
    assert (saved["state"], saved["country"], saved["interests"]) == ("NY", "US", ["Music", "Art"])
    assert (saved["text_message_price"], saved["image_message_price"]) == (1, 3)
    assert (saved["video_message_price"], saved["voice_memo_price"], saved["stream_price"]) == (5, 2, 5)
    assert _row(creator.id)["email"] == creator.email and _row(creator.id)["role"] == "creator"


def test_post_with_the_cropped_picture_body(make_user: MakeUser) -> None:
    fan = make_user()
    body = {  # ImprovedProfile.js:370-377 for a fan: no prices; username falls back to the email
        "username": fan.email.split("@")[0], "display_name": "Fan", "bio": "",
        "profile_pic_url": "https://cdn.example.test/crop.png", "banner_url": "", "is_creator": False,
    }  # fmt: skip
    r = functions.client(PROFILE).post("/api/users/profile", headers=fan.headers, json=body)
    assert r.status_code == 200, r.text
    assert _get(fan)["profile_pic_url"] == "https://cdn.example.test/crop.png"


def test_show_token_balance_toggle(make_user: MakeUser) -> None:
    fan = make_user()
    r = functions.client(PROFILE).put(
        "/api/users/profile", headers=fan.headers, json={"show_token_balance": True}
    )
    assert r.status_code == 200 and _get(fan)["show_token_balance"] is True


@pytest.mark.parametrize(
    ("field", "value"),
    [("video_price", 7.5), ("voice_price", 0), ("text_message_price", 1.5), ("image_message_price", -1),
     ("voice_memo_price", "2"), ("stream_price", 10_001), ("video_message_price", None)],
)  # fmt: skip
def test_a_price_that_is_not_whole_tokens_is_a_422_naming_the_field(
    make_user: MakeUser, field: str, value: Any
) -> None:
    creator = make_user(role="creator")
    before = _row(creator.id)
    r = functions.client(PROFILE).put("/api/users/profile", headers=creator.headers, json={field: value})
    assert r.status_code == 422, r.text
    assert field in r.json()["error"] and r.json()["code"] == "VALIDATION_ERROR"
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert _row(creator.id) == before


def test_free_is_zero_for_messages_and_streams(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    free = {"message_price": 0, "stream_price": 0, "text_message_price": 0, "image_message_price": 0,
            "video_message_price": 0, "voice_memo_price": 0}  # fmt: skip
    r = functions.client(PROFILE).put("/api/users/profile", headers=creator.headers, json=free)
    assert r.status_code == 200, r.text
    assert {k: _get(creator)[k] for k in free} == free


# ---- #11 the pricing modal: POST /creators/rates, then PUT /users/profile, then GET ---------------------------


def test_pricing_modal_round_trip(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    rates = {
        "videoCall": 150,
        "voiceCall": 50,
        "textMessage": 0,
        "imageMessage": 100,
        "audioMessage": 150,
        "videoMessage": 200,
    }  # fmt: skip  (PricingRatesModal.js:119, parseInt || 0)
    r = functions.client(RATES).post("/api/v1/creators/rates", headers=creator.headers, json={"rates": rates})
    assert r.status_code == 200, r.text
    assert r.json()["ignored"] == []
    profile_put = {  # PricingRatesModal.js:132-147
        "video_price": rates["videoCall"], "voice_price": rates["voiceCall"], "message_price": rates["textMessage"],
        "text_message_price": rates["textMessage"], "image_message_price": rates["imageMessage"],
        "voice_memo_price": rates["audioMessage"], "video_message_price": rates["videoMessage"],
    }  # fmt: skip
    assert (
        functions.client(PROFILE)
        .put("/api/users/profile", headers=creator.headers, json=profile_put)
        .status_code
        == 200
    )
    body = _get(creator)  # PricingRatesModal.js:89-95 reads these back
    assert (body["video_price"], body["voice_price"], body["text_message_price"]) == (150, 50, 0)
    assert (body["image_message_price"], body["voice_memo_price"], body["video_message_price"]) == (
        100,
        150,
        200,
    )
    assert body["message_price"] == 0


def test_pricing_modal_with_a_zero_call_rate_is_refused_clearly(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    rates = {"videoCall": 0, "voiceCall": 50, "textMessage": 50, "imageMessage": 100, "audioMessage": 150,
             "videoMessage": 200}  # fmt: skip
    r = functions.client(RATES).post("/api/creators/rates", headers=creator.headers, json={"rates": rates})
    assert r.status_code == 422 and "rates.videoCall" in r.json()["error"]
    assert _row(creator.id)["image_message_price"] is None


# ---- #12 GET /creators/stats ----------------------------------------------------------------------------------


def test_creator_stats_for_the_dropdown_and_the_mobile_dashboard(make_user: MakeUser) -> None:
    creator, fan = make_user(role="creator"), make_user()
    sql("INSERT INTO follows (follower_id, creator_id) VALUES (%(f)s, %(c)s)", {"f": fan.id, "c": creator.id})
    body = functions.client(STATS).get("/api/v1/creators/stats", headers=creator.headers).json()
    assert body["followersCount"] == 1 and body["subscribersCount"] == 0  # ProfileDropdown.js:152-156
    data = body["data"]  # MobileCreatorDashboard.js:258-270 reads response.data.*
    assert data["success"] is True and data["followersCount"] == 1 and data["subscribersCount"] == 0
