"""`posfleet run`: start the whole embedded system under one supervisor; Ctrl-C stops everything.

It starts web, worker, scheduler and the ISO 8583 gateway (``posfleet gateway`` on
``POSFLEET_GATEWAY_BIND``, 127.0.0.1:8583), and the local simulators of the parties posfleet talks to:
the payment channels (``posfleet simulate channels`` on ``POSFLEET_CHANNELS_URL``'s port, 8585 by
default), the smart terminals polling the device channel (``posfleet simulate devices``), the card
issuer the gateway asks before approving a sale (``posfleet simulate issuer`` on
``POSFLEET_ISSUER_ADDRESS``, 127.0.0.1:8584) and POS terminals selling through the gateway at about one
message a second (``posfleet simulate terminals``), so the console shows live transactions. The
device simulator plays the demo's devices (``var/demo-devices.json``, written by ``posfleet demo``);
without that file it plays every active smart terminal (``--demo``). A simulator that exits is told
and the rest keeps running.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from posfleet.ops.supervisor import Process, supervise
from posfleet.platform.cli import host_port

DEMO_USERS = ("admin", "reviewer", "warehouse", "agent1", "merchant1")
# The demo's device credentials (written by `posfleet demo`, owner-only; demo data only).
DEMO_DEVICES = "demo-devices.json"
# The POS terminals `posfleet run` plays through the gateway, and their pace (messages a second).
DEMO_TERMINALS = 20
DEMO_RATE = 1.0


def channels_address() -> tuple[str, int]:
    """Where the channel simulator listens: POSFLEET_CHANNELS_URL's host and port (127.0.0.1:8585)."""
    parts = urlsplit(settings.POSFLEET_CHANNELS_URL)
    return parts.hostname or "127.0.0.1", parts.port or 8585


def demo_devices_file() -> Path:
    return Path(settings.VAR_DIR) / DEMO_DEVICES


def issuer_address() -> tuple[str, str]:
    """Where the issuer simulator listens: POSFLEET_ISSUER_ADDRESS (127.0.0.1:8584)."""
    host, port = host_port(settings.POSFLEET_ISSUER_ADDRESS, 8584)
    return host, str(port)


def processes(bind: str, *, simulators: bool = True) -> list[Process]:
    """What `posfleet run` starts, in order."""
    posfleet = [sys.executable, "-m", "posfleet"]
    started = [
        Process("web", [*posfleet, "serve", "--bind", bind]),
        Process("worker", [*posfleet, "worker"]),
        Process("scheduler", [*posfleet, "scheduler"]),
        Process("gateway", [*posfleet, "gateway", "--bind", settings.POSFLEET_GATEWAY_BIND]),
    ]
    if simulators:
        issuer_host, issuer_port = issuer_address()
        host, port = channels_address()
        devices = demo_devices_file()
        which = ["--credentials", str(devices)] if devices.exists() else ["--demo"]
        started += [
            Process(
                "channels",
                [*posfleet, "simulate", "channels", "--host", host, "--port", str(port)],
                optional=True,
            ),
            Process(
                "devices",
                [*posfleet, "simulate", "devices", *which, "--url", f"http://{bind}"],
                optional=True,
            ),
            Process(
                "issuer",
                [*posfleet, "simulate", "issuer", "--host", issuer_host, "--port", issuer_port],
                optional=True,
            ),
            Process(
                "terminals",
                [
                    *posfleet,
                    "simulate",
                    "terminals",
                    "--gateway",
                    settings.POSFLEET_GATEWAY_BIND,
                    "--terminals",
                    str(DEMO_TERMINALS),
                    "--rate",
                    f"{DEMO_RATE:g}",
                    "--report",
                    "60",
                ],
                optional=True,
                # Not before the gateway and the issuer answer: a sale the gateway cannot ask an
                # issuer still starting about is declined (91), a poor first line of the demo.
                after=(
                    host_port(settings.POSFLEET_GATEWAY_BIND, 8583),
                    (issuer_host, int(issuer_port)),
                ),
            ),
        ]
    return started


class Command(BaseCommand):
    help = (
        "Start web, worker, scheduler and the ISO 8583 gateway, and the payment-channel, device, issuer "
        "and POS-terminal simulators, together; Ctrl-C stops them all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("POSFLEET_BIND", "127.0.0.1:8000"))
        parser.add_argument(
            "--no-simulators",
            action="store_true",
            help="Do not start the payment-channel, device, issuer and POS-terminal simulators (real "
            "channels, devices, issuer and terminals).",
        )

    def handle(self, *args: Any, bind: str, no_simulators: bool = False, **options: Any) -> None:
        started = processes(bind, simulators=not no_simulators)
        self._banner(bind, started)
        code = supervise(started)
        self.stdout.write("posfleet stopped")
        if code:
            sys.exit(code)

    def _banner(self, bind: str, started: list[Process]) -> None:
        base = f"http://{bind}"
        lines = [
            "",
            "posfleet is starting: " + ", ".join(p.name for p in started),
            f"  console   {base}/console/   (log in at {base}/accounts/login/)",
            f"  API       {base}/api/v1/    (docs at {base}/api/v1/docs)",
            f"  health    {base}/healthz",
            f"  admin     {base}/admin/",
        ]
        names = {p.name for p in started}
        if "gateway" in names:
            lines.append(
                f"  gateway   {settings.POSFLEET_GATEWAY_BIND}   (ISO 8583: sign-on, sale, reversal, "
                f"heartbeat; asks the issuer at {settings.POSFLEET_ISSUER_ADDRESS})"
            )
        if "channels" in names:
            host, port = channels_address()
            lines.append(
                f"  channels  http://{host}:{port}/_state   (payment-channel simulator: UnionPay, Alipay, "
                "WeChat Pay, JD Pay)"
            )
        if "devices" in names:
            devices = demo_devices_file()
            played = f"the demo's devices ({devices})" if devices.exists() else "every active smart terminal"
            lines.append(f"  devices   smart-terminal simulator polling {base}/api/v1/device/ as {played}")
        if "issuer" in names:
            issuer_host, issuer_port = issuer_address()
            lines.append(
                f"  issuer    {issuer_host}:{issuer_port}   (issuer simulator: amounts ending 51 or 05 "
                "declined, 68 never answered, 77 late)"
            )
        if "terminals" in names:
            lines.append(
                f"  terminals {DEMO_TERMINALS} POS terminals selling through the gateway, about "
                f"{DEMO_RATE:g} message a second: live transactions at {base}/console/transactions/"
            )
        if settings.POSFLEET["DEMO_MODE"]:
            lines += [
                "",
                "Demo logins (demo data only): " + ", ".join(DEMO_USERS),
                "  password posfleet-demo; TOTP secret JBSWY3DPEHPK3PXP (add it to an authenticator app)",
            ]
        lines += ["", "Press Ctrl-C to stop.", ""]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
