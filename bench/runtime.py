"""The interpreter cold starts are measured with: a venv holding requirements.txt only, as Vercel installs.

The development venv also holds the dev tools (schemathesis brings rich, click and pygments), and httpx imports
its command line when those are importable: every function importing httpx would pay ~50 ms a deployment never
pays. The venv is built once under .local/bench/ and rebuilt when requirements.txt changes; when it cannot be
built (no package index) the development interpreter is used, and the result says so.
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
from pathlib import Path

from bench.stack import LOCAL_DIR, ROOT

VENV = LOCAL_DIR / "runtime-venv"


RUNTIME = "runtime venv (requirements.txt only)"
DEV = "development venv (dev tools installed: heavier imports than a deployment)"


def _stamp() -> str:
    return hashlib.sha256((ROOT / "requirements.txt").read_bytes()).hexdigest()


def python(*, build: bool = True) -> tuple[str, str]:
    """(interpreter, what it is)."""
    if not build:
        return sys.executable, DEV
    LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCAL_DIR / "runtime-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once build it once
        return _ensure()


def _ensure() -> tuple[str, str]:
    interpreter = VENV / "bin" / "python"
    stamp = VENV / ".requirements-sha256"
    if interpreter.exists() and stamp.exists() and stamp.read_text() == _stamp():
        return str(interpreter), RUNTIME
    base = getattr(sys, "_base_executable", sys.executable)
    try:
        subprocess.run(
            [base, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True, timeout=300
        )
        subprocess.run(
            [str(interpreter), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
             str(ROOT / "requirements.txt")],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        stamp.write_text(_stamp())
        return str(interpreter), RUNTIME
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"[bench] runtime venv not built ({type(exc).__name__}); using the dev venv", file=sys.stderr)
    return sys.executable, DEV


def describe(path: Path | str) -> str:
    """The interpreter's version line."""
    done = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or done.stderr.strip()
