"""mypy over the whole tree. api/ files are loaded by path (no packages), so two files with the same name
(`calls/[call_id]/heartbeat.py`, `streaming/.../heartbeat.py`) would be one module to mypy: they are checked in
batches whose file names are unique. `python -m scripts.typecheck`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def batches(files: list[Path]) -> list[list[Path]]:
    """Split files so that no batch holds two files with the same name."""
    out: list[list[Path]] = []
    for path in sorted(files):
        for batch in out:
            if all(p.name != path.name for p in batch):
                batch.append(path)
                break
        else:
            out.append([path])
    return out


def main() -> int:
    """Run mypy on the packages, then on api/ in unique-name batches; non-zero if any run fails."""
    mypy = [sys.executable, "-m", "mypy"]
    rc = subprocess.call(mypy, cwd=ROOT)
    api_files = [p.relative_to(ROOT) for p in (ROOT / "api").rglob("*.py")]
    for batch in batches(api_files):
        rc |= subprocess.call([*mypy, *map(str, batch)], cwd=ROOT)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
