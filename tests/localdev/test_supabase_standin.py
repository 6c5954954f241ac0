"""The Supabase stand-in: a JWKS that PyJWT verifies ES256 tokens with, and the Admin API's key checks."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from localdev import devenv
from localdev.supabase_standin import SupabaseStandin, running


def _claims(server: SupabaseStandin, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": str(uuid.uuid4()),
        "aud": "authenticated",
        "iss": server.issuer,
        "iat": now,
        "exp": now + 60,
        **extra,
    }


def _admin_headers(apikey: str | None, bearer: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if apikey is not None:
        headers["apikey"] = apikey
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    return headers


def test_pyjwt_verifies_an_es256_token_with_the_served_jwks() -> None:
    with running() as server:
        token = server.sign(_claims(server, role="authenticated"))
        signing_key = jwt.PyJWKClient(server.jwks_url).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token, signing_key.key, algorithms=["ES256"], audience="authenticated", issuer=server.issuer
        )
        jwks = httpx.get(server.jwks_url, timeout=5).json()

    assert jwt.get_unverified_header(token)["kid"] == server.kid
    assert claims["role"] == "authenticated"
    assert [k["kid"] for k in jwks["keys"]] == [server.kid]
    assert jwks["keys"][0]["alg"] == "ES256"
    assert "d" not in jwks["keys"][0]  # never the private part


def test_a_token_signed_by_another_key_with_the_same_kid_is_rejected() -> None:
    impostor = ec.generate_private_key(ec.SECP256R1())
    with running() as server:
        forged = jwt.encode(_claims(server), impostor, algorithm="ES256", headers={"kid": server.kid})
        signing_key = jwt.PyJWKClient(server.jwks_url).get_signing_key_from_jwt(forged)
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(forged, signing_key.key, algorithms=["ES256"], audience="authenticated")


def test_empty_jwks_publishes_no_keys() -> None:
    with running(empty_jwks=True) as server:
        assert httpx.get(server.jwks_url, timeout=5).json() == {"keys": []}


def test_admin_update_with_the_service_role_key_merges_user_metadata() -> None:
    key = devenv.service_role_key()
    user_id = str(uuid.uuid4())
    with running(service_role_key=key) as server:
        url = f"{server.url}/auth/v1/admin/users/{user_id}"
        first = httpx.put(
            url, json={"user_metadata": {"role": "fan", "isCreator": False}}, headers=_admin_headers(key, key)
        )
        second = httpx.put(
            url, json={"user_metadata": {"isCreator": True, "role": None}}, headers=_admin_headers(key, key)
        )
        fetched = httpx.get(url, headers=_admin_headers(key, key), timeout=5)
        recorded = httpx.get(f"{server.url}/_local/requests", timeout=5).json()

    assert first.status_code == 200
    assert first.json()["user_metadata"] == {"role": "fan", "isCreator": False}
    assert second.json()["user_metadata"] == {
        "isCreator": True
    }  # merged key by key; null removes, as GoTrue does
    assert fetched.json()["id"] == user_id
    puts = [r for r in recorded if r["method"] == "PUT"]
    assert [r["status"] for r in puts] == [200, 200]
    assert puts[0]["body"] == {"user_metadata": {"role": "fan", "isCreator": False}}
    assert puts[0]["headers"]["apikey"] == key
    assert puts[0]["headers"]["authorization"] == f"Bearer {key}"


@pytest.mark.parametrize(
    ("apikey", "bearer"),
    [
        (None, "right"),
        ("wrong", "right"),
        ("right", None),
        ("right", "wrong"),
        ("right", "anon-key"),
    ],
    ids=["no-apikey", "wrong-apikey", "no-bearer", "wrong-bearer", "anon-bearer"],
)
def test_admin_update_with_a_wrong_key_is_401_and_changes_nothing(
    apikey: str | None, bearer: str | None
) -> None:
    key = "service-role-key-for-this-test"
    user_id = str(uuid.uuid4())

    def pick(value: str | None) -> str | None:
        return key if value == "right" else value

    with running(service_role_key=key) as server:
        resp = httpx.put(
            f"{server.url}/auth/v1/admin/users/{user_id}",
            json={"user_metadata": {"role": "admin"}},
            headers=_admin_headers(pick(apikey), pick(bearer)),
            timeout=5,
        )
        recorded = server.requests("/auth/v1/admin/")
        users = dict(server.users)

    assert resp.status_code == 401
    assert [r["status"] for r in recorded] == [401]
    assert users == {}


@pytest.mark.parametrize(
    "body",
    [{"metadata": {"role": "fan"}}, {"user_metadata": "fan"}, ["user_metadata"]],
    ids=["no-user-metadata", "metadata-not-object", "not-an-object"],
)
def test_admin_update_needs_a_user_metadata_object(body: Any) -> None:
    key = devenv.service_role_key()
    with running() as server:
        resp = httpx.put(
            f"{server.url}/auth/v1/admin/users/{uuid.uuid4()}",
            json=body,
            headers=_admin_headers(key, key),
            timeout=5,
        )
    assert resp.status_code == 400
    assert resp.json()["error_code"] == "validation_failed"


def test_a_non_uuid_user_id_is_404() -> None:
    key = devenv.service_role_key()
    with running() as server:
        resp = httpx.put(
            f"{server.url}/auth/v1/admin/users/not-a-uuid",
            json={"user_metadata": {}},
            headers=_admin_headers(key, key),
            timeout=5,
        )
    assert resp.status_code == 404


def test_injected_failures_answer_the_next_calls_then_stop() -> None:
    key = devenv.service_role_key()
    with running() as server:
        httpx.post(
            f"{server.url}/_local/fail", json={"status": 503, "times": 2}, timeout=5
        ).raise_for_status()
        url = f"{server.url}/auth/v1/admin/users/{uuid.uuid4()}"
        statuses = [
            httpx.put(
                url, json={"user_metadata": {"n": n}}, headers=_admin_headers(key, key), timeout=5
            ).status_code
            for n in range(3)
        ]
    assert statuses == [503, 503, 200]


def test_key_file_keeps_the_same_kid_across_restarts(tmp_path: Path) -> None:
    key_file = tmp_path / "supabase.pem"
    with running(key_file=key_file) as first:
        token = first.sign(_claims(first))
        kid = first.kid
    assert key_file.stat().st_mode & 0o077 == 0  # a private key: owner-only
    with running(key_file=key_file) as second:
        signing_key = jwt.PyJWKClient(second.jwks_url).get_signing_key_from_jwt(token)
        jwt.decode(token, signing_key.key, algorithms=["ES256"], audience="authenticated")
    assert second.kid == kid
