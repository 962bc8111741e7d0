"""POS terminals signing on to the gateway and selling: sales, reversals and heartbeats at a given rate.

``posfleet simulate terminals`` plays N active terminals of the local database (or those of ``--tid``)
against a running ``posfleet gateway``, with the issuer simulator (``posfleet simulate issuer``) behind
it, and reports every ``--report`` seconds and at the end: messages sent, approvals, declines by
response code and the latency percentiles of the sales and reversals.

**The simulator plays the key-loading facility.** A real terminal gets its master key (TMK) loaded in a
secure room; here each simulated terminal reads its live key from the database
(``fleet.services.master_key(live_key(...))``), so it needs the same database as the gateway and
terminals that have a key (``fleet.services.keys_issue_missing`` gives the demo's one). When the
gateway hands out a session key the master key can no longer unwrap (the terminal was reactivated: a
new key), the facility loads the new one and the terminal signs on again.

What each terminal does, as a real one would: it connects and signs on (0800), then sends what the
schedule gives it, one message at a time on its own connection:

- sales (0200), realistic: scanned codes (QR, ~55 %), chip (~25 %), tap (~15 %) and swipe (~5 %) cards
  from a few BINs (debit, the credit BINs of ``dialect.CREDIT_BINS``, a foreign one); amounts
  log-normal around 60 yuan by method (tap at most 1,000 yuan, the no-PIN limit); a few amounts end in
  ``51`` or ``05``, which the issuer simulator declines (``--declines``); amounts the issuer simulator
  would never answer or answer late (ending ``68``, ``77``) are not sent;
- reversals (0400, ``--reversals`` of the financial messages) of the terminal's last approved sale,
  and, after a connection was lost while a sale waited for its answer, of that sale (the outcome is
  unknown: POS specifications have the terminal reverse it);
- heartbeats (0820) every ``--heartbeat`` seconds with its firmware and, when its store has
  coordinates, where it is (the store's, jittered by ~50 m).

It signs on again when a sale is answered ``A0`` (no valid session key), and reconnects (with backoff)
when the gateway closes the connection or is not there yet. ``--rate`` is the financial messages per
second of all terminals together (Poisson arrivals, some terminals busier than others); with
``--clock real`` it follows the hour of the day in Asia/Shanghai (quiet at night, busy at lunch and in
the evening), ``--rate`` being the day's average. ``--rate 0`` is a closed loop: every terminal sends
its next sale as soon as it has the answer (the benchmark's maximum throughput).

One asyncio event loop plays every terminal (one connection each); the benchmark (``bench/gateway.py``)
drives the gateway with the same code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connections

from posfleet.gateway.simulated_traffic import (
    Tally,
    declines_text,
    load_key,
    load_profiles,
    percentile,
    report_line,
)
from posfleet.gateway.simulation import Simulation
from posfleet.platform import heap
from posfleet.platform.cli import host_port

# -- `posfleet simulate terminals` ----------------------------------------------------------------


def _fraction(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError("a fraction from 0 to 1")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gateway",
        default=settings.POSFLEET_GATEWAY_BIND,
        help=f"the gateway's host:port (default {settings.POSFLEET_GATEWAY_BIND})",
    )
    parser.add_argument(
        "--terminals", type=int, default=20, help="how many active terminals with a key to play (default 20)"
    )
    parser.add_argument(
        "--tid", action="append", default=[], metavar="TID", help="play this terminal (repeatable)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=2.0,
        help="sales and reversals a second, all terminals together (default 2; 0: each terminal as fast "
        "as it gets answers)",
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)")
    parser.add_argument(
        "--reversals", type=_fraction, default=0.02, help="fraction of reversals (default 0.02)"
    )
    parser.add_argument(
        "--declines",
        type=_fraction,
        default=0.02,
        help="fraction of sales the issuer simulator declines: amounts ending 51 or 05 (default 0.02)",
    )
    parser.add_argument(
        "--heartbeat", type=float, default=60.0, help="seconds between a terminal's heartbeats (0: none)"
    )
    parser.add_argument(
        "--clock",
        choices=["flat", "real"],
        default="flat",
        help="flat: --rate all day; real: busier at lunch and in the evening (Asia/Shanghai), --rate "
        "being the day's average",
    )
    parser.add_argument("--report", type=float, default=10.0, help="seconds between reports (default 10)")
    parser.add_argument("--each", action="store_true", help="one line per sale and reversal")
    parser.add_argument("--seed", type=int, default=None, help="same seed, same terminals and sales")


def run(options: dict[str, Any], stdout: TextIO) -> Tally:
    host, port = host_port(options.get("gateway") or settings.POSFLEET_GATEWAY_BIND, 8583)
    profiles = load_profiles(
        int(options.get("terminals") or 20), options.get("tid") or (), options.get("seed")
    )
    connections.close_all()  # the event loop's thread uses the database only through a worker thread
    if not profiles:
        raise CommandError(
            "no active terminal with a key: build the demo (`posfleet demo`) or activate terminals",
            returncode=2,
        )
    out = getattr(stdout, "_out", stdout)
    tty = bool(getattr(out, "isatty", lambda: False)())

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    def number(name: str, default: float) -> float:
        value = options.get(name)
        return default if value is None else float(value)

    rate = number("rate", 2.0)
    simulation = Simulation(
        profiles,
        host,
        port,
        rate=rate,
        reversals=number("reversals", 0.02),
        declines=number("declines", 0.02),
        heartbeat=number("heartbeat", 60.0),
        seed=options.get("seed"),
        clock=options.get("clock") or "flat",
        reload_key=load_key,
        say=say,
        each=bool(options.get("each")),
    )
    heap.settle()  # its own pauses would show as the gateway's latency (ADR 0043)
    pace = f"{rate:g} msg/s" if rate > 0 else "closed loop"
    say(
        f"terminals simulator: {len(profiles)} terminal(s) → gateway {host}:{port}, {pace}, "
        f"until {'Ctrl-C' if options.get('duration') is None else str(options['duration']) + ' s'}"
    )
    live = _LiveTable(out) if tty else None

    def report(tally: Tally, window: list[float]) -> None:
        if live is not None:
            live.add(tally, window)
        else:
            say(report_line(tally, window))

    async def main() -> Tally:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, lambda: simulation.stop.set())
        task = asyncio.create_task(
            simulation.run(
                options.get("duration"), report=report, report_every=float(options.get("report") or 10.0)
            )
        )
        await asyncio.sleep(0)
        return await task

    try:
        import uvloop

        runner: Callable[[Any], Tally] = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(main())
    tally = simulation.tally
    if live is not None:
        live.final(tally)
    else:
        say(report_line(tally, final=True))
    return tally


class _LiveTable:
    """On a terminal: one row per report in a rich table, then the totals by kind and code."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console

        self.console = Console(file=out, force_terminal=True)
        self.header = True

    def add(self, tally: Tally, window: list[float]) -> None:
        from rich.table import Table

        table = Table(show_header=self.header, box=None)
        self.header = False
        for name in ("time", "sent", "approved", "declined", "errors", "p50 ms", "p95 ms", "p99 ms"):
            table.add_column(name, justify="right", min_width=8)
        table.add_row(
            f"{time.monotonic() - tally.started:,.0f} s",
            f"{tally.sent.total():,}",
            f"{tally.approved():,}",
            declines_text(tally.declined()),
            f"{sum(tally.errors.values()):,}",
            f"{percentile(window, 0.5):.1f}",
            f"{percentile(window, 0.95):.1f}",
            f"{percentile(window, 0.99):.1f}",
        )
        self.console.print(table)

    def final(self, tally: Tally) -> None:
        from rich.table import Table

        table = Table("message", "answer", "count", title="Terminals simulator: totals")
        for (kind, code), n in sorted(tally.codes.items()):
            table.add_row(kind, code, f"{n:,}")
        for what, n in sorted(tally.errors.items()):
            table.add_row("(no answer)" if what in {"timeout", "connection lost"} else "", what, f"{n:,}")
        self.console.print(table)
        self.console.print(report_line(tally, final=True))


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run it as `posfleet simulate terminals`")
