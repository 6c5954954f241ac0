"""Every streams test starts and ends with the Redis breaker closed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lib.streams import viewers


@pytest.fixture(autouse=True)
def _closed_breaker() -> Iterator[None]:
    """A test that switched Redis off must not leave the next one skipping Redis."""
    viewers.breaker.reset()
    yield
    viewers.breaker.reset()
