"""The outbox worker as its own process: ``python -m app.notifications.cli worker``.

Runs until SIGTERM or SIGINT, then finishes the sends in flight and records their results before it exits (see
``app.notifications.worker``). Any number may run at once, beside API processes that run the embedded worker.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from app.core.config import Settings, load_settings
from app.core.context import build_context, close_context
from app.core.logging import configure_logging
from app.notifications.worker import run_worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.notifications.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="send outbox messages until SIGTERM/SIGINT")
    parser.parse_args(argv)

    settings = load_settings()
    configure_logging(settings.log_level)
    asyncio.run(_worker(settings))
    return 0


async def _worker(settings: Settings) -> None:
    context = build_context(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await run_worker(context, stop=stop)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await close_context(context)


if __name__ == "__main__":
    raise SystemExit(main())
