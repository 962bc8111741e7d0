"""A refurbished device on its new merchant's home: its last transaction is the new merchant's, never a
sale its earlier merchant took on it (the amount and the moment are that merchant's business)."""

from __future__ import annotations

from datetime import date, datetime

import time_machine

from posfleet.billing.tests.test_statements import SH, active_terminal, ingest, txn
from posfleet.fleet.states import Command, Status
from posfleet.reports.merchant_home import merchant_home
from posfleet.testing.money import on_standard_plan
from posfleet.testing.personas import path_to, walk

LATER = datetime(2026, 11, 10, 10, 0, tzinfo=SH)


def _row(world, name: str, sn: str):
    home = merchant_home(world.user(name), on=LATER.date(), at=LATER)
    return next(t for t in home.terminals if t.sn == sn)


def test_a_refurbished_device_shows_none_of_its_earlier_merchants_sales(world):
    on_standard_plan(world.merchant_a)
    terminal = active_terminal(world, "SN-RF-0001", merchant=world.merchant_a)
    ingest(txn(terminal, 1, 12_345, day=date(2026, 10, 5)))
    assert _row(world, "merchant_a", "SN-RF-0001").last_amount_fen == 12_345  # its own sale shows

    with time_machine.travel(datetime(2026, 11, 1, 9, 0, tzinfo=SH), tick=False):
        walk(world, "SN-RF-0001", [Command.DEACTIVATE, Command.DEREGISTER, Command.RECEIVE_RETURN])
        walk(world, "SN-RF-0001", [Command.REFURBISH, *path_to(Status.ACTIVE)], merchant=world.merchant_b)

    row = _row(world, "merchant_b", "SN-RF-0001")
    assert (row.last_at, row.last_amount_fen, row.last_note) == (None, None, "")
