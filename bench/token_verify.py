"""Row: token verification (`lib.auth.verify_token`) per call with a warm cache, HS256 and ES256.

Runs in its own process (`python -m bench.token_verify --n N`): SUPABASE_URL points at a local Supabase
stand-in serving an ES256 JWKS, so both algorithms check signature, `exp`, `aud` and `iss`. The first
verification of each kind (the JWKS fetch, PyJWT's first-use costs) is left out; then N calls each, timed one by
one, alternating the two kinds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def measure(n: int) -> dict[str, Any]:
    """p50/p99/mean microseconds per verify for HS256 and ES256."""
    import jwt

    from localdev import devenv, supabase_standin

    with supabase_standin.running() as standin:
        os.environ.update(
            {
                "ENVIRONMENT": "development",
                "SUPABASE_URL": standin.url,
                "SUPABASE_JWT_SECRET": devenv.SUPABASE_JWT_SECRET,
            }
        )
        from lib import auth, config

        config.reset()
        now = int(time.time())
        claims = {
            "sub": str(uuid.uuid4()),
            "aud": "authenticated",
            "role": "authenticated",
            "iss": standin.issuer,
            "iat": now,
            "exp": now + 3600,
            "email": "bench@bench.test",
        }
        tokens = {
            "HS256": jwt.encode(claims, devenv.SUPABASE_JWT_SECRET, algorithm="HS256"),
            "ES256": standin.sign(claims),
        }
        for token in tokens.values():  # warm: JWKS fetched, key parsed, code paths loaded
            auth.verify_token(token)
        times: dict[str, list[float]] = {alg: [] for alg in tokens}
        for _ in range(n):
            for alg, token in tokens.items():
                t0 = time.perf_counter()
                auth.verify_token(token)
                times[alg].append(time.perf_counter() - t0)
        jwks_fetches = len(standin.requests(supabase_standin.JWKS_PATH))
    out: dict[str, Any] = {"verifications": n, "jwks_fetches": jwks_fetches}
    for alg, values in times.items():
        ordered = sorted(values)
        out[alg] = {
            "p50_us": ordered[len(ordered) // 2] * 1e6,
            "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6,
            "mean_us": sum(ordered) / len(ordered) * 1e6,
        }
    return out


def run(env: dict[str, str], n: int) -> dict[str, Any]:
    """Measure in a fresh process (its settings are its own)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.token_verify", "--n", str(n)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"token verification probe failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    print(json.dumps(measure(parser.parse_args().n)), flush=True)
