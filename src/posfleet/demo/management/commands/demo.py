"""``posfleet demo``: a realistic, deterministic demo fleet with two years of audited history and, for
the last weeks, its money (contracts, deposits, transactions, settlements)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.table import Table

from posfleet.demo.applications import build_applications
from posfleet.demo.build import (
    DEFAULT_MONEY_DAYS,
    DEFAULT_SALES_PER_DAY,
    DEFAULT_SEED,
    NotEmpty,
    build_demo,
    database_is_empty,
)
from posfleet.demo.closures import walkthrough_terminal
from posfleet.demo.vocabulary import PASSWORD
from posfleet.enrollment.services.expiry import expiry_sweep
from posfleet.fleet.models import Terminal
from posfleet.platform.cli import raw_stream
from posfleet.platform.context import Actor
from posfleet.testing.totp import DEMO_TOTP_SECRET

# The demo devices' credentials, for the device simulator `posfleet run` starts (demo data only).
DEVICES_FILE = "demo-devices.json"


class Command(BaseCommand):
    help = (
        "Create the demo fleet in an empty database: a provider, agents in two levels, merchants with "
        "stores, terminals in every state with their history in the audit chain, rate plans, service "
        "contracts and deposits, transactions and T+1 settlements for the last days, and demo logins "
        f"(password {PASSWORD}, TOTP secret {DEMO_TOTP_SECRET}). Same options, same data."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--agents", type=int, default=20, help="agents, a quarter of them top level")
        parser.add_argument("--merchants", type=int, default=2000)
        parser.add_argument("--terminals", type=int, default=10_000)
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="same seed, same fleet")
        parser.add_argument(
            "--today", type=date.fromisoformat, help="anchor date of the history (default: today), YYYY-MM-DD"
        )
        parser.add_argument(
            "--money-days",
            type=int,
            default=DEFAULT_MONEY_DAYS,
            help=f"days of transactions and settlements up to yesterday (default {DEFAULT_MONEY_DAYS}; "
            "0: no money at all)",
        )
        parser.add_argument(
            "--sales-per-day",
            type=float,
            default=DEFAULT_SALES_PER_DAY,
            help=f"average sales a day of an active terminal (default {DEFAULT_SALES_PER_DAY})",
        )
        parser.add_argument("--if-empty", action="store_true", help="do nothing when terminals exist already")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and (Terminal.objects.exists() or not database_is_empty()):
            self.stdout.write("demo: the database has data already; nothing done.")
            return
        self.stdout.write("demo: building the demo fleet…")
        try:
            summary = build_demo(
                agents=options["agents"],
                merchants=options["merchants"],
                terminals=options["terminals"],
                seed=options["seed"],
                today=options["today"],
                money_days=options["money_days"],
                sales_per_day=options["sales_per_day"],
                write=self.stdout.write,
                devices_file=Path(settings.VAR_DIR) / DEVICES_FILE,
            )
        except NotEmpty as exc:
            raise CommandError(f"{exc}; run it on a fresh database, or pass --if-empty") from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        # Today's expiry notices, as the scheduler's first sweep records them (the worker sends them):
        # the history above is the past; this is the first thing that happens today.
        if options["today"] is None:
            summary.expiry_notices = expiry_sweep(actor=Actor.job("expiry_sweep")).found
        applications = build_applications(write=self.stdout.write)

        console = Console(file=raw_stream(self.stdout), force_terminal=self.stdout.isatty())
        created = Table("created", "count", title=f"Demo fleet ({summary.seconds:.1f} s)")
        for name, count in summary.counts.items():
            created.add_row(name, f"{count:,}")
        created.add_row("status periods", f"{summary.status_periods:,}")
        created.add_row("audit events (history)", f"{summary.audit_events:,}")
        created.add_row("terminal master keys", f"{summary.keys:,}")
        created.add_row("service expiring within 30 days", f"{summary.expiring_30_days:,}")
        notices = ", ".join(f"{m} {n:,}" for m, n in summary.expiry_notices.items() if n)
        created.add_row("expiry notices due today (the worker sends them)", notices or "0")
        if applications:
            created.add_row(
                "applications (by status)", ", ".join(f"{name} {n}" for name, n in applications.items() if n)
            )
        console.print(created)
        if summary.money:
            money = Table("money", "", title=f"Money ({summary.money_seconds:.1f} s)")
            for name, value in summary.money:
                money.add_row(name, value)
            console.print(money)
        if summary.closures:
            cases = Table("closure case", "number", title="Closure cases (注销)")
            for stage, number in summary.closures.items():
                cases.add_row(stage.replace("_", " "), number)
            console.print(cases)
            self.stdout.write(
                f"device credentials for the device simulator: {summary.devices} "
                f"({Path(settings.VAR_DIR) / DEVICES_FILE})"
            )
            walkthrough = walkthrough_terminal()
            if walkthrough:
                self.stdout.write(
                    f"closure walk-through (README): as merchant1, close terminal {walkthrough}"
                )
        spent = ", ".join(f"{name} {seconds:.1f}" for name, seconds in summary.cpu.items())
        self.stdout.write(f"processor seconds: {spent}")
        states = Table("status", "terminals", title="Terminals by status")
        for status, count in summary.statuses.items():
            states.add_row(status, f"{count:,}")
        console.print(states)
        logins = Table("username", "role", "organisation", title="Demo logins")
        shown = [
            row for row in summary.logins if not row[0].startswith("agent") or row[0] in {"agent1", "agent2"}
        ]
        for username, role, organisation in shown:
            logins.add_row(username, role, organisation)
        agents = [row[0] for row in summary.logins if row[0].startswith("agent")]
        if len(agents) > 2:
            logins.add_row(f"agent3 … agent{len(agents)}", "agent", "one per agent")
        console.print(logins)
        console.print(f"password: {PASSWORD}   TOTP secret: {DEMO_TOTP_SECRET}   language: zh-hans")
