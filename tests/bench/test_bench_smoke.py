"""The benchmark and soak code runs end to end at a tiny scale. Benchmarks are never timed tests: nothing here
asserts a figure or a timing, only that every row ran, checked what it measured, and wrote its outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ADMIN_URL, REDIS_URL, TEST_ENV

ROOT = Path(__file__).resolve().parents[2]
ROWS = {"active_sessions", "request_cost", "realtime", "webhook", "billing", "token_verify", "coldstart"}


def _env() -> dict[str, str]:
    """This machine's environment without the test session's settings: the bench sets its own."""
    env = {k: v for k, v in os.environ.items() if k not in TEST_ENV and k != "UPSTASH_REDIS_REST_URL"}
    env.update(DIGIS_TEST_DATABASE_URL=ADMIN_URL, DIGIS_TEST_REDIS_URL=REDIS_URL)
    return env


def _run(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_bench_runs_every_row_and_writes_table_json_and_png(tmp_path: Path) -> None:
    database = f"digis_bench_smoke_{os.getpid()}"
    done = _run(
        ["-m", "bench.run", "--scale", "tiny", "--database", database, "--out", str(tmp_path), "--drop-after",
         "--dev-python"],
        timeout_s=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    document = json.loads((tmp_path / "bench.json").read_text())
    rows = document["rows"]
    assert set(rows) >= ROWS
    # What each row measured was right, whatever it cost.
    sessions = rows["active_sessions"]
    assert sessions["redis"]["count"] == sessions["database"]["count"] == sessions["count"] == 40
    assert (sessions["redis"]["source"], sessions["database"]["source"]) == ("redis", "database")
    assert sessions["plain_count"]["plan"].startswith("Seq Scan")
    assert rows["request_cost"]["1"]["balance"]["statuses"] == {"200": 12}
    assert rows["billing"]["sweep"]["answer"]["minutesBilled"] == 40
    assert rows["billing"]["one_at_a_time"]["statuses"] == {"billed": 40}
    assert rows["billing"]["books"]["reconcile_ok"] is True
    assert rows["billing"]["books"]["minutes_charged_twice"] == 0
    assert rows["webhook"]["credited"] == rows["webhook"]["sent"]
    assert rows["realtime"]["missed"] == 0
    assert not rows["coldstart"]["failed"]
    assert {line["row"].split(",")[0].split(" (")[0] for line in document["table"]} >= {
        "Billing sweep",
        "Cold start",
        "Stripe webhook -> credit committed",
    }
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| Row | Measure | Result |" in (tmp_path / "bench.md").read_text()
    assert "Billing sweep" in done.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_soak_keeps_the_books_with_jobs_sweeps_and_duplicates_racing(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = _run(
        ["-m", "bench.soak", "--calls", "14", "--minutes", "5", "--workers", "4",
         "--database", f"digis_soak_smoke_{os.getpid()}", "--out", str(out)],
        timeout_s=280,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    books = result["books"]
    assert result["ok"] is True
    assert books["reconcile_ok"] is True
    assert books["balance_drift"] == 0
    assert books["minutes_charged_twice"] == 0
    assert books["calls_total_not_their_charges"] == 0
    # Calls 7 and 14 went silent, call 10 ran out of tokens, the rest hung up after 5 minutes (call 11 too,
    # whose minute-3 job was lost: the sweep charged that minute).
    assert books["outcomes"] == {
        "ended/hangup/5min": 11,
        "ended/heartbeat_timeout/3min": 2,
        "ended/insufficient_funds/3min": 1,
    }
    assert (
        result["statuses"]["minute_job:already_billed"] > 0
    )  # duplicate deliveries and the sweep raced them
