"""The issuer host: approves, declines by the amount's last two digits, answers late or never.

See ``posfleet.gateway.issuer`` for the rules (amount ending 51, 05, 68, 77).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any, TextIO

from posfleet.gateway.issuer import serve_simulator
from posfleet.platform import heap


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8584)
    parser.add_argument("--late", type=float, default=3.0, help="seconds a late answer (amount ..77) takes")


def run(options: dict[str, Any], stdout: TextIO) -> None:
    async def main() -> None:
        heap.settle()  # its pauses would be the gateway's answers' (ADR 0043)
        server = await serve_simulator(options["host"], options["port"], late=options["late"])
        stdout.write(f"issuer simulator: listening on {options['host']}:{options['port']}\n")
        stdout.flush()
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
