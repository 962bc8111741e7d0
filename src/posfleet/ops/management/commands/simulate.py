"""`posfleet simulate <what>`: local stand-ins for the remote parties posfleet talks to.

- ``channels``: the payment channels (UnionPay card and QR, Alipay, WeChat Pay, JD Pay) a terminal is
  unbound from at closure, over HTTP on loopback; each can answer, refuse, fail, time out or answer late.
- ``devices``: smart terminals polling the device command channel (/api/v1/device/...) and acknowledging
  (or never answering) the commands they fetch.
- ``issuer``: the card issuer's host the ISO 8583 gateway asks before approving a sale; it approves,
  declines, answers late or never by rules on the amount.
- ``terminals``: POS terminals signing on to the ISO 8583 gateway and sending sales, reversals and
  heartbeats at a given rate; reports approvals, declines by code and latency percentiles.

Each simulator lives beside the code that talks to it (``parties.channels.simulator``,
``fleet.devices.simulator``) and offers ``add_arguments(parser)`` and ``run(options, stdout)``.
"""

from __future__ import annotations

import importlib
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

SIMULATORS = {
    "channels": "posfleet.parties.channels.simulator",
    "devices": "posfleet.fleet.devices.simulator",
    "issuer": "posfleet.gateway.issuer_simulator",
    "terminals": "posfleet.gateway.terminal_simulator",
}


class Command(BaseCommand):
    help = (
        "Run a local simulator of a remote party: 'channels' (payment channels), 'devices' (smart "
        "terminals on the device channel), 'issuer' (the card issuer's host), 'terminals' (POS terminals "
        "on the ISO 8583 gateway)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="what", required=True)
        for what, module in SIMULATORS.items():
            simulator = importlib.import_module(module)
            child = sub.add_parser(what, help=(simulator.__doc__ or "").strip().splitlines()[0])
            simulator.add_arguments(child)

    def handle(self, *args: Any, what: str, **options: Any) -> None:
        if what not in SIMULATORS:
            raise CommandError(f"unknown simulator {what!r}: {', '.join(SIMULATORS)}")
        importlib.import_module(SIMULATORS[what]).run(options, self.stdout)
