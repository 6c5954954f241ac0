"""Known-failing operations (known_failures.py) as xfails; one that starts passing fails the run (strict)."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator

import pytest

from tests.contract import stack as contract_stack
from tests.contract.known_failures import KNOWN_FAILURES


@pytest.fixture(scope="module")
def api() -> Iterator[contract_stack.Stack]:
    """The router and the stand-ins, for one test module."""
    with contract_stack.running() as running:
        yield running


@pytest.fixture
def user_token(api: contract_stack.Stack) -> str:
    """A fresh user per test (admin + creator, with tokens), so operations never see each other's state."""
    return api.token_for(*contract_stack.seed_user())


def _label(item: pytest.Item) -> str | None:
    # Schemathesis items share one node id; each carries its operation's label ("POST /api/...").
    label = getattr(item, "operation_label", None)
    return label if isinstance(label, str) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Attach an xfail marker to each known-failing operation (not with DIGIS_CONTRACT_XFAIL=0)."""
    if os.environ.get("DIGIS_CONTRACT_XFAIL", "1") == "0":
        return
    for item in items:
        label = _label(item)
        if label in KNOWN_FAILURES:
            # strict=True would trip schemathesis' own report hook; strictness is enforced below instead.
            item.add_marker(pytest.mark.xfail(reason=KNOWN_FAILURES[label], strict=False))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Turn an XPASS of a listed operation into a failure: the list must shrink when a function is fixed."""
    report = yield
    label = _label(item)
    if call.when == "call" and label in KNOWN_FAILURES and report.passed and hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (
            f"[XPASS(strict)] {label} now passes: remove it from tests/contract/known_failures.py"
        )
    return report
