"""Fixtures: the Stripe stand-ins as the frontend's purchases and payout pages meet them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from localdev import stripe_connect_standin, stripe_standin
from localdev.stripe_connect_standin import ConnectStandin
from tests.payouts.conftest import SECRET_KEY, clock, connect, creator, set_env

__all__ = ["clock", "connect", "creator", "set_env"]  # re-exported fixtures


@pytest.fixture
def stripe_stack(set_env: Callable[[str, str], None]) -> Iterator[ConnectStandin]:
    """What `scripts/dev` runs: the Connect stand-in as STRIPE_API_BASE in front of localstripe."""
    with (
        stripe_standin.running() as localstripe,
        stripe_connect_standin.running(secret_key=SECRET_KEY, upstream=localstripe.url) as server,
    ):
        set_env("STRIPE_API_BASE", server.url)
        yield server
