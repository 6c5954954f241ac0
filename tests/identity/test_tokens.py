"""Token verification: the JWT attack matrix (each 401, never 500), valid tokens, the JWKS cache, its cost."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from lib import auth, db
from localdev.supabase_standin import JWKS_PATH, SupabaseStandin, public_jwk
from tests.conftest import TEST_ENV
from tests.identity.conftest import es256_claims
from tests.support import functions
from tests.support.tokens import bearer, make_token

PROFILE = "users/profile.py"
SECRET = TEST_ENV["SUPABASE_JWT_SECRET"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw_token(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes] | None) -> str:
    """A JWT assembled by hand, for shapes PyJWT refuses to produce."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{_b64(signature)}"


def _hs256_with(key: bytes) -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(key, data, hashlib.sha256).digest()


def _user_claims(subject: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": str(subject),
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _rows(user_id: uuid.UUID) -> int:
    with db.transaction() as conn:
        row = conn.execute("SELECT count(*) AS n FROM users WHERE id = %(id)s", {"id": user_id}).fetchone()
    return int(row["n"]) if row else 0


def _assert_refused(headers: dict[str, str], user_id: uuid.UUID | None = None) -> None:
    r = functions.client(PROFILE).get("/api/users/profile", headers=headers)
    assert r.status_code == 401, r.text
    body = r.json()
    assert "Invalid token" in body["error"] and "Invalid token" in body["message"]
    assert r.headers["content-type"].startswith("application/problem+json")
    if user_id is not None:
        assert _rows(user_id) == 0, "a refused token must not create a user"


SUB = uuid.uuid4()
NOW = int(time.time())

HS256_ATTACKS: dict[str, Callable[[], str]] = {
    "alg_none": lambda: _raw_token({"alg": "none", "typ": "JWT"}, _user_claims(SUB), None),
    "alg_none_with_signature": lambda: _raw_token(
        {"alg": "none"}, _user_claims(SUB), _hs256_with(SECRET.encode())
    ),
    "expired": lambda: make_token(SUB, exp_in=-3600),
    "expired_beyond_leeway": lambda: make_token(SUB, exp_in=-(auth.LEEWAY_S + 5)),
    "nbf_in_the_future": lambda: make_token(SUB, nbf=int(time.time()) + 600),
    "wrong_aud": lambda: make_token(SUB, aud="anon"),
    "aud_list_without_authenticated": lambda: jwt.encode(
        _user_claims(SUB, aud=["other", "service"]), SECRET, algorithm="HS256"
    ),
    "missing_aud": lambda: make_token(SUB, aud=None),
    "missing_sub": lambda: jwt.encode(_user_claims(SUB, sub=None), SECRET, algorithm="HS256"),
    "sub_not_a_uuid": lambda: make_token("not-a-uuid"),
    "missing_exp": lambda: jwt.encode(_user_claims(SUB, exp=None), SECRET, algorithm="HS256"),
    "service_role_key": lambda: jwt.encode(
        {"iss": "supabase", "ref": "digislocal", "role": "service_role", "iat": NOW, "exp": NOW + 10**8},
        SECRET,
        algorithm="HS256",
    ),
    "anon_key": lambda: jwt.encode(
        {"iss": "supabase", "ref": "digislocal", "role": "anon", "iat": NOW, "exp": NOW + 10**8},
        SECRET,
        algorithm="HS256",
    ),
    "service_role_with_user_claims": lambda: make_token(SUB, role="service_role"),
    "another_secret": lambda: make_token(SUB, secret="some-other-secret-that-is-also-32-bytes-long"),
    "hs384_with_the_secret": lambda: _raw_token(
        {"alg": "HS384"},
        _user_claims(SUB),
        lambda data: hmac.new(SECRET.encode(), data, hashlib.sha384).digest(),
    ),
    "tampered_payload": lambda: _tamper(make_token(SUB)),
    "truncated_signature": lambda: make_token(SUB)[:-6],
    "es256_without_jwks_configured": lambda: jwt.encode(
        _user_claims(SUB), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "k1"}
    ),
}


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(uuid.uuid4())
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


GARBAGE = [
    "",
    "garbage",
    "a.b.c",
    "...",
    "eyJhbGciOiJIUzI1NiJ9",
    "eyJhbGciOiJIUzI1NiJ9.e30",
    "%%%.%%%.%%%",
    _b64(b"[1,2]") + "." + _b64(b"{}") + ".",
    _b64(b'{"alg":"HS256","kid":{"x":1}}') + "." + _b64(b"{}") + ".sig",
    _b64(b'{"alg":["HS256"]}') + "." + _b64(b"{}") + ".sig",
    _b64(b"\xff\xfe") + "." + _b64(b"\xff") + "." + _b64(b"\x00"),
    "x" * 8000,
]


@pytest.mark.parametrize("name", sorted(HS256_ATTACKS))
def test_hs256_attack_is_401_invalid_token(clean: None, name: str) -> None:
    _assert_refused(bearer(HS256_ATTACKS[name]()), SUB)


@pytest.mark.parametrize("token", GARBAGE, ids=lambda t: repr(t[:24]))
def test_garbage_token_is_401_not_500(clean: None, token: str) -> None:
    _assert_refused({"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize(
    "header", [{}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer   "}]
)
def test_missing_token_is_401(clean: None, header: dict[str, str]) -> None:
    _assert_refused(header)


def test_other_scheme_is_401(clean: None) -> None:
    _assert_refused({"Authorization": f"Basic {make_token(SUB)}"}, SUB)


def test_valid_hs256_token_is_accepted_and_creates_the_user(clean: None) -> None:
    user_id = uuid.uuid4()
    r = functions.client(PROFILE).get(
        "/api/users/profile", headers=bearer(make_token(user_id, email="a@b.test"))
    )
    assert r.status_code == 200, r.text
    assert r.json()["id"] == str(user_id)
    assert _rows(user_id) == 1


def test_token_inside_leeway_is_accepted(clean: None) -> None:
    r = functions.client(PROFILE).get(
        "/api/users/profile", headers=bearer(make_token(uuid.uuid4(), exp_in=-2))
    )
    assert r.status_code == 200, r.text


def test_hs256_token_must_carry_the_issuer_when_supabase_url_is_set(
    clean: None, supabase: SupabaseStandin
) -> None:
    user_id = uuid.uuid4()
    _assert_refused(bearer(make_token(user_id, iss="https://evil.example/auth/v1")), user_id)
    _assert_refused(bearer(jwt.encode(_user_claims(user_id), SECRET, algorithm="HS256")), user_id)
    ok = functions.client(PROFILE).get("/api/users/profile", headers=bearer(make_token(user_id)))
    assert ok.status_code == 200, ok.text


# ---- asymmetric keys (the stand-in's JWKS) ----------------------------------------------------------------


def _es256_attacks(sb: SupabaseStandin, sub: uuid.UUID) -> dict[str, str]:
    stranger = ec.generate_private_key(ec.SECP256R1())
    public_pem = sb.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = es256_claims(sb, sub)
    return {
        "signed_by_unknown_key_claiming_the_published_kid": jwt.encode(
            claims, stranger, algorithm="ES256", headers={"kid": sb.kid}
        ),
        "unknown_kid": sb.sign(claims, kid="no-such-kid"),
        "no_kid": jwt.encode(claims, sb.private_key, algorithm="ES256"),
        "hs256_signed_with_the_jwks_public_key_pem": _raw_token(
            {"alg": "HS256", "kid": sb.kid, "typ": "JWT"}, claims, _hs256_with(public_pem)
        ),
        "hs256_signed_with_the_jwk_json": _raw_token(
            {"alg": "HS256", "kid": sb.kid}, claims, _hs256_with(json.dumps(sb.jwk).encode())
        ),
        "hs256_signed_with_the_jwk_x_coordinate": _raw_token(
            {"alg": "HS256", "kid": sb.kid}, claims, _hs256_with(sb.jwk["x"].encode())
        ),
        "rs256_header_on_the_ec_key": _raw_token(
            {"alg": "RS256", "kid": sb.kid}, claims, lambda data: b"\x00" * 256
        ),
        "alg_none_with_the_published_kid": _raw_token({"alg": "none", "kid": sb.kid}, claims, None),
        "wrong_issuer": sb.sign(es256_claims(sb, sub, iss="https://other-project.supabase.co/auth/v1")),
        "missing_issuer": sb.sign(es256_claims(sb, sub, iss=None)),
        "wrong_aud": sb.sign(es256_claims(sb, sub, aud="anon")),
        "missing_aud": sb.sign(es256_claims(sb, sub, aud=None)),
        "expired": sb.sign(es256_claims(sb, sub, exp=int(time.time()) - 3600)),
        "nbf_in_the_future": sb.sign(es256_claims(sb, sub, nbf=int(time.time()) + 600)),
        "missing_sub": sb.sign(es256_claims(sb, sub, sub=None)),
        "service_role": sb.sign(es256_claims(sb, sub, role="service_role")),
        "tampered": _tamper(sb.sign(es256_claims(sb, sub))),
    }


ES256_ATTACK_NAMES = [
    "signed_by_unknown_key_claiming_the_published_kid",
    "unknown_kid",
    "no_kid",
    "hs256_signed_with_the_jwks_public_key_pem",
    "hs256_signed_with_the_jwk_json",
    "hs256_signed_with_the_jwk_x_coordinate",
    "rs256_header_on_the_ec_key",
    "alg_none_with_the_published_kid",
    "wrong_issuer",
    "missing_issuer",
    "wrong_aud",
    "missing_aud",
    "expired",
    "nbf_in_the_future",
    "missing_sub",
    "service_role",
    "tampered",
]


@pytest.mark.parametrize("name", ES256_ATTACK_NAMES)
def test_asymmetric_attack_is_401_invalid_token(clean: None, supabase: SupabaseStandin, name: str) -> None:
    sub = uuid.uuid4()
    _assert_refused(bearer(_es256_attacks(supabase, sub)[name]), sub)


def test_valid_es256_token_is_accepted(clean: None, supabase: SupabaseStandin) -> None:
    sub = uuid.uuid4()
    r = functions.client(PROFILE).get(
        "/api/users/profile", headers=bearer(supabase.sign(es256_claims(supabase, sub)))
    )
    assert r.status_code == 200, r.text
    assert r.json()["id"] == str(sub)


def test_legacy_hs256_still_works_next_to_the_jwks(clean: None, supabase: SupabaseStandin) -> None:
    r = functions.client(PROFILE).get("/api/users/profile", headers=bearer(make_token(uuid.uuid4())))
    assert r.status_code == 200, r.text


def test_jwks_is_fetched_once_and_cached(clean: None, supabase: SupabaseStandin) -> None:
    client = functions.client(PROFILE)
    for _ in range(5):
        token = supabase.sign(es256_claims(supabase, uuid.uuid4()))
        assert client.get("/api/users/profile", headers=bearer(token)).status_code == 200
    assert len(supabase.requests(JWKS_PATH)) == 1


def test_a_flood_of_unknown_kids_fetches_the_jwks_at_most_once_a_minute(
    clean: None, supabase: SupabaseStandin
) -> None:
    client = functions.client(PROFILE)
    assert (
        client.get(
            "/api/users/profile", headers=bearer(supabase.sign(es256_claims(supabase, uuid.uuid4())))
        ).status_code
        == 200
    )
    for i in range(20):
        token = supabase.sign(es256_claims(supabase, uuid.uuid4()), kid=f"unknown-{i}")
        assert client.get("/api/users/profile", headers=bearer(token)).status_code == 401
    assert len(supabase.requests(JWKS_PATH)) == 1


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rotated_key_is_picked_up_by_one_refetch_after_a_minute(supabase: SupabaseStandin) -> None:
    clock = _Clock()
    cache = auth.JwksCache(supabase.jwks_url, clock=clock)
    old_kid = supabase.kid
    assert cache.get(old_kid) is not None
    new_key = ec.generate_private_key(ec.SECP256R1())
    supabase.private_key, supabase.jwk = new_key, public_jwk(new_key)  # the project rotates its signing key
    new_kid = supabase.kid
    assert cache.get(new_kid) is None  # within a minute of the last fetch: no refetch
    clock.now += auth.JWKS_MIN_REFETCH_S + 1
    assert cache.get(new_kid) is not None
    assert cache.get(new_kid) is not None
    assert len(supabase.requests(JWKS_PATH)) == 2


def test_jwks_is_refreshed_after_its_ttl_and_stale_keys_survive_a_failed_refresh(
    supabase: SupabaseStandin,
) -> None:
    clock = _Clock()
    cache = auth.JwksCache(supabase.jwks_url, clock=clock)
    kid = supabase.kid
    assert cache.get(kid) is not None
    clock.now += auth.JWKS_TTL_S + 1
    assert cache.get(kid) is not None
    assert len(supabase.requests(JWKS_PATH)) == 2
    dead = auth.JwksCache(supabase.jwks_url, clock=clock)
    assert dead.get(kid) is not None
    dead.url = "http://127.0.0.1:1/auth/v1/.well-known/jwks.json"  # Supabase unreachable from now on
    clock.now += auth.JWKS_TTL_S + 1
    assert dead.get(kid) is not None, "a failed refresh must keep serving the keys we had"


def test_jwks_fetch_that_hangs_gives_up_within_the_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections in the kernel, never answers
    try:
        cache = auth.JwksCache(f"http://127.0.0.1:{listener.getsockname()[1]}/jwks", timeout_s=0.3)
        started = time.monotonic()
        assert cache.get("any") is None
        assert time.monotonic() - started < 2
    finally:
        listener.close()


def test_jwks_parsing_keeps_only_asymmetric_signature_keys() -> None:
    ec_key = public_jwk(ec.generate_private_key(ec.SECP256R1()))
    rsa_numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_numbers()
    rsa_jwk = {
        "kty": "RSA",
        "kid": "rsa-1",
        "n": _b64(rsa_numbers.n.to_bytes(256, "big")),
        "e": _b64(rsa_numbers.e.to_bytes(3, "big")),
    }
    keys = auth.parse_jwks(
        {
            "keys": [
                ec_key,
                rsa_jwk,
                {"kty": "oct", "kid": "hmac", "k": _b64(b"secret"), "alg": "HS256"},
                {**ec_key, "kid": "enc", "use": "enc"},
                {**ec_key, "kid": "mismatch", "alg": "RS256"},
                {"kty": "EC", "kid": "broken", "crv": "P-256", "x": "AA", "y": "AA"},
                "not-a-key",
                {"kty": "EC"},
            ]
        }
    )
    assert {kid: k.algorithm for kid, k in keys.items()} == {ec_key["kid"]: "ES256", "rsa-1": "RS256"}
    assert auth.parse_jwks({"keys": "nope"}) == {} and auth.parse_jwks([]) == {}


# ---- cost -------------------------------------------------------------------------------------------------


def _median_seconds(fn: Callable[[], object], n: int = 300) -> float:
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def test_verification_costs_well_under_a_millisecond_with_a_warm_cache(supabase: SupabaseStandin) -> None:
    hs = make_token(uuid.uuid4())
    es = supabase.sign(es256_claims(supabase, uuid.uuid4()))
    auth.verify_token(es)  # warm the JWKS cache
    hs_cost = _median_seconds(lambda: auth.verify_token(hs))
    es_cost = _median_seconds(lambda: auth.verify_token(es))
    assert hs_cost < 0.0005, f"HS256 verify median {hs_cost * 1e6:.0f} us"
    assert es_cost < 0.0005, f"ES256 verify median {es_cost * 1e6:.0f} us"
