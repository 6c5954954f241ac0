"""A skipped realtime or browser test is a failure (loaded by tests/conftest.py).

The realtime tests (soketi, the local Pusher) and the browser test (headless Chromium driving pusher-js) mark
themselves `skipif` with a reason when node, soketi or Chromium is missing here; that reason turns the skip into a
failure, so CI cannot pass having silently left them out. `scripts/test` installs soketi (npm install in
localdev/node) and Chromium (scripts/install-browser); a developer without them deselects those tests explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any

import pytest

# The reasons tests give when node, soketi, playwright-core/pusher-js or Chromium cannot be had.
MISSING_TEST_BED = re.compile(r"soketi|chromium|playwright|pusher-js|node is not on PATH", re.IGNORECASE)


def skip_reason(report: pytest.TestReport) -> str:
    """The text a skipped report gives for its skip."""
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    """Turn a skip for a missing realtime/browser test bed into a failure naming what is missing."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and MISSING_TEST_BED.search(skip_reason(report)):
        report.outcome = "failed"
        report.longrepr = (
            f"{skip_reason(report)}\nA skipped realtime or browser test is a failure: install node and run "
            "`npm install` in localdev/node (soketi, playwright-core, pusher-js) and scripts/install-browser."
        )
