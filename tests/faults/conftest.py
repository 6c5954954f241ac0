"""Fault-test fixtures: settings repointed and restored, breakers closed, each request timed twice.

Every request a fault test makes is timed two ways: `response_s`, until the last body byte was handed to the
server (what the client waits for; on Vercel the after-commit work runs after this), and `total_s`, until the
function returned (after-commit work included, i.e. what the invocation is billed for). The figures are printed
in a "fault figures" section at the end of the run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lib import agora, presence, stats
from tests.conftest import MakeUser, TestUser
from tests.support.functions import load_function

FIGURE = "fault figure"
FIGURES: list[str] = []  # collected where the summary is printed (the xdist controller, or the only process)
_current: dict[str, pytest.Item] = {}


@pytest.fixture(autouse=True)
def _figures_go_to(request: pytest.FixtureRequest) -> Iterator[None]:
    """Figures recorded during a test travel with its report (so they survive pytest-xdist workers)."""
    _current["item"] = request.node
    yield
    _current.pop("item", None)


def record(line: str) -> None:
    """Keep one figure for the end-of-run summary."""
    _current["item"].user_properties.append((FIGURE, line))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the figures a test recorded."""
    if report.when == "call":
        FIGURES.extend(str(value) for name, value in report.user_properties if name == FIGURE)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print what the fault tests measured."""
    if FIGURES:
        terminalreporter.section("fault figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


class _ResponseClock:
    """ASGI wrapper noting when the response's last body chunk was sent (before any background work runs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.sent_at: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def clocked(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.sent_at = time.perf_counter()

        await self.app(scope, receive, clocked)


@dataclass
class Timed:
    """A response and how long it took: until sent (`response_s`) and until the function returned (`total_s`)."""

    response: Response
    response_s: float
    total_s: float

    @property
    def status(self) -> int:
        """The HTTP status."""
        return self.response.status_code

    def json(self) -> Any:
        """The decoded body."""
        return self.response.json()

    def ms(self) -> str:
        """`response/total` in ms, for figures."""
        return f"{self.response_s * 1000:.0f}/{self.total_s * 1000:.0f} ms"


def call(relpath: str, method: str, path: str, **kwargs: Any) -> Timed:
    """Call one api/ function in-process (as Vercel would) and time it."""
    clock = _ResponseClock(load_function(relpath))
    client = TestClient(clock, raise_server_exceptions=False)
    started = time.perf_counter()
    response = client.request(method, path, **kwargs)
    total = time.perf_counter() - started
    sent = (clock.sent_at or started + total) - started
    return Timed(response, sent, total)


def _close_breakers() -> None:
    agora.breaker.reset()
    stats.reset_local()
    presence.reset_local()


@pytest.fixture(autouse=True)
def _closed_breakers() -> Iterator[None]:
    """A fault left behind (an open breaker, a degraded limiter) must not leak into the next test."""
    _close_breakers()
    yield
    _close_breakers()


@pytest.fixture
def fan(make_user: MakeUser) -> TestUser:
    """A fan with 100 tokens."""
    return make_user(balance=100)


@pytest.fixture
def creator(make_user: MakeUser) -> TestUser:
    """A creator: video 10, voice 6 tokens a minute."""
    return make_user(role="creator")
