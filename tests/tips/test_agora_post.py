"""POST /agora/token {channelName} and POST /agora/refresh-token {channel} (EnhancedMobileLiveStream.js)."""

from __future__ import annotations

from typing import Any

from agora_token_builder.AccessToken import AccessToken

from tests.conftest import MakeUser
from tests.conftest import TestUser as Person
from tests.support.functions import client
from tests.tips.helpers import end_stream, go_live

PUBLISH_VIDEO = 3  # AccessToken v006 privilege


def post(path: str, who: Person | None, body: dict[str, Any]) -> Any:
    fn = "agora/token.py" if path == "token" else "agora/refresh-token.py"
    headers = who.headers if who else {}
    return client(fn).post(f"/api/v1/agora/{path}", json=body, headers=headers)


def privileges(token: str) -> dict[int, int]:
    parsed = AccessToken()
    assert parsed.fromString(token)
    return dict(parsed.messages)


def test_the_mobile_host_gets_token_app_id_and_uid_from_both_routes(make_user: MakeUser) -> None:
    host = make_user(role="creator")
    channel = go_live(host)["channel"]
    got = client("agora/token.py").get(f"/api/agora/token?channel={channel}", headers=host.headers).json()
    for path, body in (("token", {"channelName": channel}), ("refresh-token", {"channel": channel})):
        r = post(path, host, body)
        assert r.status_code == 200, r.text
        answer = r.json()
        # EnhancedMobileLiveStream.js:522-527 reads {token, appId, uid}; :377-383 and :495-501 read {token}.
        assert isinstance(answer["token"], str) and isinstance(answer["appId"], str)
        assert isinstance(answer["uid"], int) and not isinstance(answer["uid"], bool)
        assert (answer["uid"], answer["appId"], answer["role"]) == (got["uid"], got["appId"], "host")
        assert PUBLISH_VIDEO in privileges(answer["token"])


def test_a_viewer_gets_an_audience_token_and_may_not_ask_for_host(make_user: MakeUser) -> None:
    host, fan = make_user(role="creator"), make_user()
    channel = go_live(host)["channel"]
    r = post("refresh-token", fan, {"channel": channel})
    assert r.status_code == 200 and r.json()["role"] == "audience"
    assert PUBLISH_VIDEO not in privileges(r.json()["token"])
    r = post("token", fan, {"channelName": channel, "role": "host"})
    assert (r.status_code, r.json()["code"]) == (403, "NOT_STREAM_HOST")


def test_same_rules_as_get_unknown_or_ended_channels_and_bad_bodies(make_user: MakeUser) -> None:
    host = make_user(role="creator")
    stream = go_live(host)
    end_stream(host, stream["id"])
    for path in ("token", "refresh-token"):
        r = post(path, host, {"channelName": stream["channel"]})
        assert (r.status_code, r.json()["code"]) == (404, "CHANNEL_NOT_FOUND")
        r = post(path, host, {})
        assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"channelName"}
        assert post(path, host, {"channel": "x" * 65}).status_code == 422
        assert post(path, None, {"channel": stream["channel"]}).status_code == 401
