"""Every calls test starts with the Agora and active-sessions breakers closed and the usual users at hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lib import agora, stats
from tests.conftest import MakeUser, TestUser


@pytest.fixture(autouse=True)
def _closed_breakers() -> Iterator[None]:
    """A test that made Agora or Redis fail must not leave the next one skipping them."""
    agora.breaker.reset()
    stats.reset_local()
    yield
    agora.breaker.reset()
    stats.reset_local()


@pytest.fixture
def fan(make_user: MakeUser) -> TestUser:
    """A fan with 100 tokens: ten minutes of video at the test creators' 10 tokens a minute."""
    return make_user(balance=100)


@pytest.fixture
def creator(make_user: MakeUser) -> TestUser:
    """A creator: video 10, voice 6 tokens a minute."""
    return make_user(role="creator")


@pytest.fixture
def outsider(make_user: MakeUser) -> TestUser:
    """Someone in no call, with tokens."""
    return make_user(balance=100)
