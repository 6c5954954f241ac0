"""tests/support/strict_skips.py: a realtime or browser test skipped for a missing soketi/Chromium fails the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = """
import pytest

@pytest.mark.skipif(True, reason="soketi not installed (node or localdev/node/node_modules missing)")
def test_needs_soketi():
    pass

def test_needs_chromium():
    pytest.skip("/usr/bin/chromium is missing and could not be installed: run scripts/install-browser")

@pytest.mark.skipif(True, reason="pg_trgm is not installed here")
def test_unrelated_skip():
    pass
"""


def test_missing_soketi_or_browser_fails_and_other_skips_stay_skips(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_cases.py").write_text(CASES)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.support.strict_skips", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-c", str(tmp_path / "pytest.ini"), "-rA", str(tmp_path / "test_cases.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ERROR" in done.stdout and "test_needs_soketi" in done.stdout
    assert "FAILED" in done.stdout and "test_needs_chromium" in done.stdout
    assert "1 failed, 1 skipped, 1 error" in done.stdout
    assert "A skipped realtime or browser test is a failure" in done.stdout
