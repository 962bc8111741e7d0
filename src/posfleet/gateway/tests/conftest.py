"""A real gateway and issuer simulator on loopback, in a thread with its own event loop; terminals of
the test world with their keys."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from posfleet.fleet.models import Terminal as TerminalRow
from posfleet.fleet.services import live_key, master_key
from posfleet.gateway.issuer import HostIssuer, serve_simulator
from posfleet.gateway.server import Gateway, Limits
from posfleet.gateway.terminal import Terminal
from posfleet.platform import paycrypto
from posfleet.testing.servers import free_port


@dataclass
class Running:
    host: str
    port: int
    issuer_port: int
    gateway: Gateway
    loop: asyncio.AbstractEventLoop


@pytest.fixture
def gateway_factory() -> Iterator[object]:
    started: list[tuple[asyncio.AbstractEventLoop, threading.Thread, Gateway]] = []

    def start(*, limits: Limits | None = None, issuer_timeout: float = 1.0, late: float = 2.0) -> Running:
        port, issuer_port = free_port(), free_port()
        loop = asyncio.new_event_loop()
        gateway = Gateway(issuer=HostIssuer("127.0.0.1", issuer_port, timeout=issuer_timeout), limits=limits)
        ready = threading.Event()

        servers: list[asyncio.Server] = []

        async def main() -> None:
            servers.append(await serve_simulator("127.0.0.1", issuer_port, late=late))
            servers.append(await gateway.serve("127.0.0.1", port))
            ready.set()

        async def stop() -> None:
            for server in servers:
                server.close()
            await gateway.stop(grace=1.0)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(main())
            loop.run_forever()
            loop.run_until_complete(stop())
            loop.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        assert ready.wait(10), "the gateway did not start"
        started.append((loop, thread, gateway))
        return Running("127.0.0.1", port, issuer_port, gateway, loop)

    yield start
    for loop, thread, gateway in started:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        gateway.close()


def database_url() -> str:
    """The test database as a URL other processes can open (it must hold committed data)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgresql://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


class Processes:
    """posfleet processes (``python -m posfleet ...``) on the test database, `make run`'s settings, each
    logging to its own file; stopped (TERM, then KILL) at the end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "posfleet.config.settings.dev",
            "POSFLEET_DATABASE_URL": database_url(),
            "POSFLEET_VAR_DIR": str(logs / "var"),
        }
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        out = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.started[name] = subprocess.Popen(
            [sys.executable, "-m", "posfleet", *args], env=self.env, stdout=out, stderr=out
        )

    def gateway(self, name: str, issuer_port: int) -> Running:
        """Start ``posfleet gateway`` asking the issuer at ``issuer_port``; return when it listens."""
        port = free_port()
        self.start(name, "gateway", "--bind", f"127.0.0.1:{port}", "--issuer", f"127.0.0.1:{issuer_port}")
        deadline = time.monotonic() + 30
        while not (self.logs / f"{name}.log").read_text(errors="replace").count("listening on"):
            assert self.started[name].poll() is None, self.log(name)
            assert time.monotonic() < deadline, self.log(name)
            time.sleep(0.1)
        return Running("127.0.0.1", port, issuer_port, None, None)  # type: ignore[arg-type]

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in self.started.values():
            process.terminate()
        for process in self.started.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def gateway(gateway_factory) -> Running:  # type: ignore[no-untyped-def]
    return gateway_factory()


def terminal_of(row: TerminalRow, running: Running) -> Terminal:
    """A terminal client holding ``row``'s master key (the key-loading facility's part), connected."""
    row.refresh_from_db()
    key = live_key(row.pk)
    assert key is not None, f"{row.sn} has no live key"
    assert row.merchant is not None
    client = Terminal(
        tid=row.tid, mid=row.merchant.mid, master_key=master_key(key), scheme=paycrypto.Algorithm(key.scheme)
    )
    client.connect(running.host, running.port)
    return client
