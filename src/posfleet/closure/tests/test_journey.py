"""A closure from the merchant's request to the certificate, with time travel: the quote, review,
the contract's end, the final settlement, the return and inspection, the deposit refunded once — and
the exact journals, audit events and outbox events, in order."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import time_machine

from posfleet.audit.models import AuditEvent
from posfleet.audit.verify import verify_chain
from posfleet.billing.models import AccountKind, Deposit, Journal, ServiceContract, ServiceFeeDue
from posfleet.billing.services.settlement import settlement_run
from posfleet.billing.services.transactions import transactions_ingest
from posfleet.billing.tests.test_transactions import txn
from posfleet.billing.verify import verify_ledger
from posfleet.closure.models import CaseStep, CaseTerminal, DataBackup
from posfleet.closure.runner import advance
from posfleet.closure.services import closure_inspect, closure_quote, closure_receive
from posfleet.closure.states import CaseStatus
from posfleet.closure.tests.conftest import closable, person, request_and_approve
from posfleet.fleet.models import Terminal, TerminalKey
from posfleet.platform.context import Actor
from posfleet.platform.models import OutboxMessage
from posfleet.testing.money import balance

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=SHANGHAI)


def test_quote_shows_every_line_before_commitment(world):
    with time_machine.travel(at(6), tick=False):
        setup = closable(world)
        quote = closure_quote(actor=person(world, "merchant_a"), sns=[setup.terminal.sn]).quote
    lines = {(line.code, line.params.get("grade", "")): line.amount_fen for line in quote.lines}
    # 6 of the minimum 12 months served: 6 × 10.00 penalty; the first year's fee is due and unpaid.
    assert lines[("penalty", "")] == 6_000
    assert lines[("fees_due", "")] == 9_900
    assert lines[("recovery_fee", "")] == 5_000
    assert lines[("damage", "B")] == 5_000
    assert lines[("damage", "C")] == 30_000
    assert lines[("deposit", "")] == 29_900
    assert quote.owed_fen == 15_900
    assert quote.expected_refund_fen == 29_900 - 15_900
    assert quote.expected_shortfall_fen == 0


def test_whole_journey_to_the_certificate(world):
    with time_machine.travel(at(6), tick=False) as clock:
        setup = closable(world)
        org = world.merchant_a.organisation_id
        # A last sale on the day the terminal stops: 1,000.00 by credit card (0.60 % fee).
        transactions_ingest(
            actor=Actor.job("ingest"), items=[txn(setup.terminal, 1, 100_000, day=date(2026, 12, 6))]
        )
        audit_before = AuditEvent.objects.count()
        case = request_and_approve(setup)
        assert {line["code"]: line["amount_fen"] for line in case.quote["lines"]}["unsettled_sales"] == 99_400
        assert case.status == CaseStatus.RUNNING
        terminal = Terminal.objects.get(pk=setup.terminal.pk)
        assert terminal.status == "deregistered"
        contract = ServiceContract.objects.get(pk=setup.contract.pk)
        assert contract.status == "ended"
        assert contract.ended_on == date(2026, 12, 6)
        # Later years' fees lapse: none will fall due on a closed terminal.
        assert not ServiceFeeDue.objects.filter(
            contract=contract, journal__isnull=True, lapsed_on__isnull=True
        )
        steps = dict(CaseStep.objects.filter(case=case).values_list("name", "state"))
        assert steps["settle"] == "waiting"
        assert steps["unbind"] == "skipped"  # no payment channel bound
        assert steps["backup"] == "pending"  # it waits for the final settlement
        assert steps["return"] == "pending"
        assert steps["refund"] == "pending"

        clock.move_to(at(7, 3))  # the T+1 run of the 6th
        settlement_run(actor=Actor.job("settle"), business_date=date(2026, 12, 6))
        advance(case.pk)
        steps = dict(CaseStep.objects.filter(case=case).values_list("name", "state"))
        assert steps["settle"] == "done"
        assert steps["backup"] == "done"
        assert steps["return"] == "waiting"
        assert DataBackup.objects.filter(case=case).count() == 1

        clock.move_to(at(9))
        closure_receive(actor=person(world, "warehouse"), sn=setup.terminal.sn)
        closure_inspect(
            actor=person(world, "warehouse"),
            sn=setup.terminal.sn,
            grade="B",
            human_damage=True,
            note="cracked screen",
            disposal="refurbish",
        )
        advance(case.pk)
        case.refresh_from_db()

    assert case.status == CaseStatus.COMPLETED
    assert case.certificate_code
    assert len(case.certificate_code) == 12
    assert not CaseTerminal.objects.filter(case=case, open=True).exists()
    assert Terminal.objects.get(pk=setup.terminal.pk).status == "in_stock"
    deposit = Deposit.objects.get(contract=setup.contract)
    # The final settlement paid 994.00 less the 99.00 fee it deducted; the deposit then paid the 60.00
    # penalty and the 50.00 damage (grade B, caused by a person): 299.00 − 110.00 = 189.00 refunded.
    # (The quote expected 140.00: it counted the fee against the deposit — the statement explains it.)
    assert (deposit.status, deposit.refunded_fen, deposit.forfeited_fen) == ("refunded", 18_900, 11_000)
    settle = CaseStep.objects.get(case=case, name="settle").evidence
    assert settle["paid_fen"] == 99_400 - 9_900
    # The gateway key went at the request's deactivation; the contract step keeps that as evidence.
    revoked = CaseStep.objects.get(case=case, name="contract").evidence["keys_revoked"][setup.terminal.sn]
    assert revoked["reason"] == "deactivated"
    assert not TerminalKey.objects.filter(terminal=setup.terminal, revoked_at__isnull=True).exists()
    assert balance(org, AccountKind.FEES_RECEIVABLE) == 0
    assert balance(org, AccountKind.PENALTIES_RECEIVABLE) == 0
    assert balance(org, AccountKind.DEPOSIT_HELD) == 0
    refs = list(
        Journal.objects.filter(merchant_id=world.merchant_a.pk)
        .exclude(kind__in=["deposit_collect", "capture"])
        .order_by("id")
        .values_list("kind", "reference")
    )
    fee = ServiceFeeDue.objects.get(contract=setup.contract, period=1)
    assert refs == [
        ("service_fee", f"service_fee:{fee.pk}"),
        ("penalty", f"closure_penalty:{setup.contract.pk}"),
        ("settlement", f"settlement:2026-12-06:{world.merchant_a.mid}"),
        ("penalty", f"closure_damage:{case.number}:{setup.terminal.sn}"),
        ("deposit_refund", f"deposit_release:{deposit.pk}"),
    ]
    events = list(
        AuditEvent.objects.filter(pk__gt=audit_before, subject_type="closure")
        .order_by("seq")
        .values_list("event_type", flat=True)
    )
    assert events[:2] == ["closure.requested", "closure.approved"]
    assert events[-1] == "closure.completed"
    assert events.count("closure.device_received") == 1
    assert events.count("closure.device_inspected") == 1
    notices = list(
        OutboxMessage.objects.filter(event_type="closure.progressed", aggregate_id=case.number)
        .order_by("id")
        .values_list("payload__step", flat=True)
    )
    assert notices[0] == "requested"
    assert notices[1] == "approved"
    assert notices[-1] == "completed"
    assert "refund" in notices
    assert "certificate" in notices
    assert verify_ledger().ok
    assert verify_chain().ok
