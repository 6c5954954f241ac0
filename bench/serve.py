"""The Vercel-style router (localdev.vercel_router.build_app) under uvicorn, logging as a deployment does.

`python -m bench.serve --root DIR --log-file PATH`: prints `ready <url>` once listening, then points stdout
(where lib's JSON request log goes, as on Vercel) at the log file. Unlike the router's dev CLI it configures
no INFO root logger, so every Upstash call is not also logged by httpx: a dev-server cost production never pays.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import uvicorn

from localdev.vercel_router import HOST, build_app


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--log-file", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    router = build_app(args.root, cron_secret=None, fire_crons=False)
    config = uvicorn.Config(
        router, host=HOST, port=args.port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn offers a flag, not an event
            await asyncio.sleep(0.02)
        if server.started:
            port = server.servers[0].sockets[0].getsockname()[1]
            router.base_url = f"http://{HOST}:{port}"
            print(f"ready {router.base_url}", flush=True)
            log = os.open(args.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, sys.stdout.fileno())  # nobody reads the pipe after `ready`: never block on it
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
