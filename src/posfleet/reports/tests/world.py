"""A small fleet with three months of history for the reports' tests, built through the real services
(terminal commands, ingest, a whole closure case, applications) on a moving clock. "Now" is
``NOW`` (10 December 2026, Shanghai); the reports read October to December with ``months=3``.

    agent A ── merchant A: RPT-A-1 (PAX, sells), RPT-A-2 (Newland, deactivated 3 Nov: competition),
           │               RPT-A-3 (PAX, never sells), RPT-CLS-1 (PAX, closure 6 Dec, deposit 9 Dec)
           └─ sub-agent A1 ── merchant A1: RPT-A1-1 (Newland, sells in November only)
    agent B ── merchant B: RPT-B-1 (PAX, sells)
    provider stock: RPT-S-1 (PAX, registered 20 Nov)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import time_machine

from posfleet.billing.services.deposits import deposit_release
from posfleet.billing.services.transactions import TxnIn, transactions_ingest
from posfleet.closure.services import closure_decide, closure_quote, closure_request
from posfleet.closure.tests.conftest import closable, person
from posfleet.enrollment.services import applications as apps
from posfleet.fleet.models import Terminal, TerminalModel
from posfleet.fleet.services import NewTerminal, terminal_register, terminal_transition
from posfleet.fleet.states import Status
from posfleet.platform.context import Actor
from posfleet.testing.applications import new_merchant_request, walk
from posfleet.testing.money import on_standard_plan
from posfleet.testing.personas import SYSTEM, World, make_terminal

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=SH)
INGEST = Actor.job("test-ingest")


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


@dataclass
class History:
    world: World
    newland: TerminalModel
    case_number: str


def _sale(sn: str, trace: int, day: date, amount: int, method: str, status: str = "approved") -> TxnIn:
    tid = Terminal.objects.get(sn=sn).tid
    assert tid
    return TxnIn(
        tid=tid,
        batch_no="000001",
        trace_no=f"{trace:06d}",
        txn_date=day,
        occurred_at=datetime(day.year, day.month, day.day, 10, trace % 60, tzinfo=SH),
        method=method,
        entry_mode="scan" if method == "qr" else "insert",
        amount_fen=amount,
        status=status,
        response_code="00" if status == "approved" else "51",
        card_masked="" if method == "qr" else "622202******1234",
    )


def build_history(world: World, actor_of: Any) -> History:
    newland = TerminalModel.objects.create(
        code="newland-n910", maker="Newland", name="N910", kind="traditional"
    )
    with time_machine.travel(at(10, 5, 9), tick=False) as clock:
        closing = closable(world, "RPT-CLS-1")  # merchant A on the standard plan, a contract with a deposit
        on_standard_plan(world.merchant_a1)
        on_standard_plan(world.merchant_b)
        make_terminal(world, "RPT-A-1", Status.ACTIVE, merchant=world.merchant_a)
        make_terminal(world, "RPT-A-2", Status.ACTIVE, merchant=world.merchant_a, model=newland)
        make_terminal(world, "RPT-A-3", Status.ACTIVE, merchant=world.merchant_a)
        make_terminal(world, "RPT-A1-1", Status.ACTIVE, merchant=world.merchant_a1, model=newland)
        make_terminal(world, "RPT-B-1", Status.ACTIVE, merchant=world.merchant_b)
        Terminal.objects.filter(sn="RPT-A-1").update(service_expires_on=date(2027, 1, 15))
        Terminal.objects.filter(sn="RPT-B-1").update(service_expires_on=date(2027, 1, 20))
        Terminal.objects.filter(sn="RPT-A1-1").update(service_expires_on=date(2027, 2, 1))
        Terminal.objects.filter(sn="RPT-A-2").update(service_expires_on=date(2027, 1, 10))  # deactivated

        clock.move_to(at(11, 2))
        walk(world, actor_of, "approved")  # reviewed at once: on time
        clock.move_to(at(11, 3))
        terminal_transition(actor=SYSTEM, sn="RPT-A-2", action="deactivate", reason="competition")
        clock.move_to(at(11, 5))
        apps.application_submit(actor=actor_of(world.user("agent_a")), request=new_merchant_request())  # late
        clock.move_to(at(11, 10, 11))
        nov, dec = date(2026, 11, 10), date(2026, 12, 5)
        transactions_ingest(
            actor=INGEST,
            items=[
                _sale("RPT-A-1", 1, nov, 10_000, "credit"),
                _sale("RPT-A-1", 2, nov, 5_000, "qr", "declined"),
                _sale("RPT-B-1", 3, nov, 20_000, "credit"),
                _sale("RPT-A1-1", 4, nov, 3_000, "qr"),
            ],
        )
        clock.move_to(at(11, 20))
        terminal_register(actor=SYSTEM, terminal=NewTerminal(sn="RPT-S-1", model_id=world.model.pk))
        clock.move_to(at(12, 5, 11))
        transactions_ingest(
            actor=INGEST,
            items=[
                _sale("RPT-A-1", 5, dec, 8_000, "qr"),
                _sale("RPT-B-1", 6, dec, 7_000, "credit", "declined"),
                _sale("RPT-B-1", 7, dec, 7_000, "credit"),
                _sale("RPT-A1-1", 8, dec, 4_000, "debit", "declined"),
            ],
        )
        # The closure: asked for and approved on 6 December (its steps are not run here: the data
        # backup renders PDFs), the deposit released by a reviewer on the 9th.
        clock.move_to(at(12, 6))
        merchant = person(world, "merchant_a")
        quote = closure_quote(actor=merchant, sns=["RPT-CLS-1"]).quote
        case = closure_request(
            actor=merchant, sns=["RPT-CLS-1"], reason="shop_closed", quote_digest=quote.digest
        )
        closure_decide(actor=person(world, "reviewer"), number=case.number, decision="approve")
        clock.move_to(at(12, 9))
        deposit_release(
            actor=person(world, "reviewer"),
            deposit_id=closing.contract.deposit.pk,
            refund_fen=25_000,
            reason="contract closed",
        )
    return History(world, newland, case.number)
