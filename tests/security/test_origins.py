"""ALLOWED_ORIGINS admits only our own frontends: no `*.vercel.app`, and Stripe only ever sends users back to them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from lib import config
from lib.config import Settings
from lib.urls import is_allowed_origin, return_url_problem
from localdev import devenv
from localdev.stripe_connect_standin import ConnectStandin
from tests.conftest import TEST_ENV, MakeUser
from tests.money.conftest import set_env
from tests.payouts.conftest import ONBOARD, RETURN_URLS, connect
from tests.support.functions import client

__all__ = ["connect", "set_env"]  # fixtures used here

ROOT = Path(__file__).resolve().parents[2]
PREVIEW = "https://digis-app-*-digisapp.vercel.app"  # <project>-<hash|git-branch>-<team-slug>.vercel.app
OUR_PREVIEW = "https://digis-app-git-feature-wallet-digisapp.vercel.app"
STRANGER = "https://attacker-digis.vercel.app"
SECRETS = {name: "s" * 40 for name in config._REQUIRED_IN_PRODUCTION}


def settings(environment: str, origins: str) -> Settings:
    return Settings(environment=environment, allowed_origins=origins, **SECRETS)  # type: ignore[arg-type]


@pytest.mark.parametrize("environment", ["production", "preview", "development", "test"])
@pytest.mark.parametrize(
    "suffix",
    ["vercel.app", "netlify.app", "github.io", "pages.dev", "herokuapp.com", "web.app", "onrender.com"],
)
def test_a_wildcard_over_a_shared_hosting_suffix_is_refused_everywhere(environment: str, suffix: str) -> None:
    with pytest.raises(ValidationError) as refused:
        settings(environment, f"https://app.digis.cc,https://*.{suffix}")
    message = str(refused.value)
    assert (
        "ALLOWED_ORIGINS" in message and f"'https://*.{suffix}' admits anyone's site on {suffix}" in message
    )
    assert f"https://<project>-*-<team-slug>.{suffix}" in message


@pytest.mark.parametrize(
    "entry",
    [
        "https://*-digisapp.vercel.app",  # any project of a team slug anyone can mimic
        "https://digis-*.vercel.app",  # any project whose name starts with digis-
        "https://*.com",
        "https://*.co.uk",
        "https://*",
        "*",
        "https://a.*.digis.cc",
        "https://*-*.digis.cc",
        "https://app.digis.cc/wallet",
        "app.digis.cc",
        "ftp://app.digis.cc",
    ],
)
def test_open_or_malformed_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValidationError, match="ALLOWED_ORIGINS"):
        settings("production", entry)


def test_exact_origins_project_scoped_previews_and_own_domain_wildcards_are_accepted() -> None:
    s = settings(
        "production", f"https://app.digis.cc/, {PREVIEW},https://*.preview.digis.cc,http://localhost:5173"
    )
    assert s.origins == [
        "https://app.digis.cc",
        PREVIEW,
        "https://*.preview.digis.cc",
        "http://localhost:5173",
    ]


def test_the_shipped_defaults_admit_no_strangers_site() -> None:
    example = (ROOT / ".env.local.example").read_text()
    shipped = [devenv.ALLOWED_ORIGINS, TEST_ENV["ALLOWED_ORIGINS"]]
    shipped += [line.split("=", 1)[1] for line in example.splitlines() if line.startswith("ALLOWED_ORIGINS=")]
    for origins in shipped:
        assert "*.vercel.app" not in origins
        settings("development", origins)  # validates
    assert "http://localhost:5173" in TEST_ENV["ALLOWED_ORIGINS"].split(",")
    # The tests' own settings: our previews in, anyone else's Vercel app out.
    assert is_allowed_origin(OUR_PREVIEW) and is_allowed_origin("http://localhost:5173")
    for origin in (
        STRANGER,
        "https://digis-app.vercel.app.evil.example",
        "https://digis-app-x-digisapp.vercel.app:1",
    ):
        assert not is_allowed_origin(origin), origin


@pytest.mark.parametrize(
    "origin, allowed", [(OUR_PREVIEW, True), (STRANGER, False), ("https://vercel.app", False)]
)
def test_cors_preflight_follows_the_same_check(origin: str, allowed: bool) -> None:
    r = client("health.py").options(
        "/api/health", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
    )
    assert (r.headers.get("access-control-allow-origin") == origin) is allowed
    assert (r.status_code == 200) is allowed


@pytest.mark.parametrize(
    "url",
    [
        f"{STRANGER}/wallet",
        "https://evil.example\\@localhost:5173/",  # browsers read `\` as `/`: the host would be evil.example
        "http://localhost:5173@evil.example/",
        "http://evil@localhost:5173/",
        "http://localhost:5173.evil.example/",
        "http://localhost:99999/",
        "http://localhost:5173 /x",
        "//localhost:5173/x",
        "http://127.0.0.1:3000/done",  # the API itself is not a frontend
    ],
)
def test_return_urls_off_our_frontends_are_refused(url: str) -> None:
    assert return_url_problem(url) is not None


@pytest.mark.parametrize(
    "url", ["http://localhost:5173/payouts/done", f"{OUR_PREVIEW}/wallet?x=1", "http://LOCALHOST:5173/ok"]
)
def test_return_urls_on_our_frontends_pass(url: str) -> None:
    assert return_url_problem(url) is None


def test_checkout_names_every_bad_url_field_in_a_422(make_user: MakeUser) -> None:
    r = client("payments/create-checkout.py").post(
        "/api/payments/create-checkout",
        json={"tokenAmount": 50, "successUrl": f"{STRANGER}/ok", "cancelUrl": "https://evil.example/no"},
        headers=make_user().headers,
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "INVALID_RETURN_URL"
    assert [e["field"] for e in body["errors"]] == ["successUrl", "cancelUrl"]
    assert "successUrl" in body["detail"] and "cancelUrl" in body["detail"]


def test_onboarding_returns_only_to_our_frontends(
    make_user: MakeUser, connect: ConnectStandin, set_env: Callable[[str, str], None]
) -> None:
    creator = make_user(role="creator")
    onboard = client(ONBOARD)
    path = "/api/creator-payouts/stripe-account/create"
    r = onboard.post(path, json={**RETURN_URLS, "refreshUrl": f"{STRANGER}/again"}, headers=creator.headers)
    assert r.status_code == 422, r.text
    assert (r.json()["code"], [e["field"] for e in r.json()["errors"]]) == (
        "INVALID_RETURN_URL",
        ["refreshUrl"],
    )
    assert connect.requests("/v1/accounts") == []  # refused before anything reached Stripe
    # A project-scoped preview of our own frontend is fine.
    body = {"returnUrl": f"{OUR_PREVIEW}/wallet", "refreshUrl": f"{OUR_PREVIEW}/wallet?again=1"}
    r = onboard.post(path, json=body, headers=creator.headers)
    assert r.status_code == 200, r.text
    links = connect.requests("/v1/account_links")
    assert [link["params"]["return_url"] for link in links] == [f"{OUR_PREVIEW}/wallet"]
