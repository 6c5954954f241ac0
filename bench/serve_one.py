"""One `api/` file's `app` alone under uvicorn, as Vercel runs a function: one process, one route.

`python -m bench.serve_one api/tokens/balance.py --log-file PATH`: prints `ready <url>` once listening, then
points stdout (lib's JSON request log) at the log file. Also serves `bench.references.floor_fastapi` when given
that module name instead of a file.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import uvicorn

ROOT = Path(__file__).resolve().parent.parent


def load(target: str) -> Any:
    """The ASGI app of an api/ file (by path) or of a module (by dotted name)."""
    if target.endswith(".py"):
        spec = importlib.util.spec_from_file_location("function", ROOT / target)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    return module.app


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target")
    parser.add_argument("--log-file", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.path.insert(0, str(ROOT))
    config = uvicorn.Config(
        load(args.target), host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="auto"
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn offers a flag, not an event
            await asyncio.sleep(0.02)
        if server.started:
            port = server.servers[0].sockets[0].getsockname()[1]
            print(f"ready http://127.0.0.1:{port}", flush=True)
            log = os.open(args.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, sys.stdout.fileno())
            os.close(log)
        await task

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    asyncio.run(serve())
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
