"""Takings for the API tests: two terminals active since yesterday morning (merchants A and B on the
standard plan), and transaction items as an acquirer would send them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from posfleet.fleet.models import Terminal
from posfleet.fleet.states import Status
from posfleet.platform.clock import today
from posfleet.testing.money import on_standard_plan
from posfleet.testing.personas import World, make_terminal

SN_TA, SN_TB = "SN-TA-0001", "SN-TB-0001"


def yesterday() -> date:
    return today() - timedelta(days=1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


@dataclass
class Takings:
    day: date
    terminal_a: Terminal  # merchant A
    terminal_b: Terminal  # merchant B


@pytest.fixture
def takings(world: World) -> Takings:
    day = yesterday()
    on_standard_plan(world.merchant_a)
    on_standard_plan(world.merchant_b)
    with time_machine.travel(at(day, 8), tick=False):
        terminal_a = make_terminal(world, SN_TA, Status.ACTIVE, merchant=world.merchant_a)
        terminal_b = make_terminal(world, SN_TB, Status.ACTIVE, merchant=world.merchant_b)
    return Takings(day, terminal_a, terminal_b)


def item(terminal: Terminal, trace: int, amount_fen: int, method: str = "credit", **fields: Any) -> dict:
    day = fields.pop("day", yesterday())
    return {
        "tid": terminal.tid,
        "batch_no": "000001",
        "trace_no": f"{trace:06d}",
        "txn_date": str(day),
        "occurred_at": at(day, 10, trace % 60).isoformat(),
        "method": method,
        "entry_mode": "scan" if method == "qr" else "insert",
        "amount_fen": amount_fen,
        **({} if method == "qr" else {"card_masked": "622202******1234"}),
        **fields,
    }
