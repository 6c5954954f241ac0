"""The fault-injecting state machine (tests/faults/traffic.py) over the money and call routes, sized for CI.

DIGIS_FUZZ_EXAMPLES (default 10) x DIGIS_FUZZ_STEPS (default 25); DIGIS_FUZZ_SEED picks a seed (unset: the run is
derandomized, the same every time); DIGIS_FUZZ_FEE_PERCENT (default 15); DIGIS_FUZZ_SHRINK=0 reports a failure as
found instead of shrinking it. A failure prints the steps as code, a `@reproduce_failure(...)` blob and the
environment to replay it with.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test

from lib import calls
from tests.conftest import TEST_ENV, SetEnv
from tests.faults.conftest import record
from tests.faults.injectors import install_commit_fault, remove_commit_fault
from tests.faults.traffic import CLOCK, OUTCOMES, RUN, FaultyTraffic

EXAMPLES = int(os.environ.get("DIGIS_FUZZ_EXAMPLES", "10"))
STEPS = int(os.environ.get("DIGIS_FUZZ_STEPS", "25"))
SEED = os.environ.get("DIGIS_FUZZ_SEED", "")
FEE_PERCENT = os.environ.get("DIGIS_FUZZ_FEE_PERCENT", "15")
SHRINK = os.environ.get("DIGIS_FUZZ_SHRINK", "1") != "0"


@pytest.fixture
def commit_fault() -> Iterator[None]:
    """The deferred COMMIT-failing trigger, installed for this test only."""
    with psycopg.connect(TEST_ENV["DATABASE_URL"], autocommit=True) as conn:
        install_commit_fault(conn)
    yield
    with psycopg.connect(TEST_ENV["DATABASE_URL"], autocommit=True) as conn:
        remove_commit_fault(conn)


@pytest.fixture
def quiet() -> Iterator[None]:
    """Pusher and QStash are down on purpose here: their per-request warnings would bury a failure's replay."""
    loggers = [logging.getLogger(name) for name in ("digis.realtime", "digis.jobs")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def run(machine: type[RuleBasedStateMachine]) -> None:
    """Run the machine with the configured size; derandomized unless DIGIS_FUZZ_SEED is set."""
    config = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        derandomize=not SEED,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        phases=list(Phase) if SHRINK else [p for p in Phase if p is not Phase.shrink],
    )
    test: Callable[[], None] = get_state_machine_test(machine, settings=config)
    if SEED:
        test = seed(int(SEED))(test)
    replay = (
        f"DIGIS_FUZZ_EXAMPLES={EXAMPLES} DIGIS_FUZZ_STEPS={STEPS} DIGIS_FUZZ_FEE_PERCENT={FEE_PERCENT} "
        + (f"DIGIS_FUZZ_SEED={SEED}" if SEED else "(derandomized: the same run every time)")
    )
    try:
        test()
    except BaseException:
        print(
            f"\nreplay with: {replay} .venv/bin/pytest {__file__} (or paste the @reproduce_failure line above)"
        )
        raise


# pytest.ini's 120 s would cut a bigger run, or the shrinking of a failure (hypothesis gives it up to 5 minutes),
# short mid-example; a passing default run takes ~20 s.
@pytest.mark.timeout(EXAMPLES * STEPS + (360 if SHRINK else 60))
def test_money_and_calls_survive_faults(
    clean: None, commit_fault: None, quiet: None, set_env: SetEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(PLATFORM_FEE_PERCENT=FEE_PERCENT)
    monkeypatch.setattr(calls, "utcnow", CLOCK)
    for key in RUN:
        RUN[key] = 0
    OUTCOMES.clear()
    started = time.perf_counter()
    run(FaultyTraffic)
    elapsed = time.perf_counter() - started
    record(
        f"state machine: {RUN['examples']} examples, {RUN['steps']} checked states, {RUN['requests']} requests, "
        f"{RUN['faults']} injected faults, fee {FEE_PERCENT}%, {elapsed:.1f} s "
        f"(DIGIS_FUZZ_EXAMPLES={EXAMPLES}, DIGIS_FUZZ_STEPS={STEPS}, seed={SEED or 'derandomized'})"
    )
    record("state machine outcomes: " + ", ".join(f"{k} x{v}" for k, v in sorted(OUTCOMES.items())))
