"""`posfleet gateway`: the ISO 8583 server terminals talk to (docs/gateway.md), until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from posfleet.gateway.issuer import HostIssuer
from posfleet.gateway.server import Gateway, Limits
from posfleet.platform import heap
from posfleet.platform.cli import host_port


class Command(BaseCommand):
    help = "Run the ISO 8583 gateway (sign-on, sale, reversal, heartbeat) until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--bind", default=settings.POSFLEET_GATEWAY_BIND, help="host:port (127.0.0.1:8583)"
        )
        parser.add_argument("--issuer", default=settings.POSFLEET_ISSUER_ADDRESS, help="issuer host:port")
        parser.add_argument("--issuer-timeout", type=float, default=settings.POSFLEET_ISSUER_TIMEOUT)
        parser.add_argument("--max-connections", type=int, default=Limits.max_connections)
        parser.add_argument("--idle-timeout", type=float, default=Limits.idle_timeout)
        parser.add_argument("--read-timeout", type=float, default=Limits.read_timeout)
        parser.add_argument("--threads", type=int, default=None, help="database reader threads (4)")
        parser.add_argument(
            "--poster",
            choices=["process", "thread"],
            default="process",
            help="where approvals are written: a process of its own (default, ADR 0039) or a thread",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = host_port(options["bind"], 8583)
        issuer_host, issuer_port = host_port(options["issuer"], 8584)
        gateway = Gateway(
            issuer=HostIssuer(issuer_host, issuer_port, timeout=options["issuer_timeout"]),
            limits=Limits(
                max_connections=options["max_connections"],
                idle_timeout=options["idle_timeout"],
                read_timeout=options["read_timeout"],
            ),
            threads=options["threads"],
            poster=options["poster"],
        )
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio still works
            runner = asyncio.run
        try:
            runner(self._serve(gateway, host, port))
        finally:
            gateway.close()  # out of the event loop: closing the threads' connections is blocking work
        self.stdout.write("gateway: stopped")

    async def _serve(self, gateway: Gateway, host: str, port: int) -> None:
        heap.settle()  # start-up's objects out of the collector's full collections (ADR 0043)
        server = await gateway.serve(host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        self.stdout.write(
            f"gateway: listening on {host}:{port}, issuer {gateway.issuer.host}:{gateway.issuer.port}"
        )
        self.stdout.flush()
        async with server:
            await stop.wait()
            server.close()
            await gateway.stop()
