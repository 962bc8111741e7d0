"""The recovery value (DOMAIN.md workflow 4, steps 8 and 9): a device that comes back as new (grade A)
credits the merchant the value its contract names, once, after the deposit — it pays what is still owed
(service fees, then penalties) and the rest is paid out. The quote shows it as a conditional line; the
statement sets the credit actually posted beside it and says why the totals moved. A worn device
(grade B), or a contract without a value, credits nothing."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import translation

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import AccountKind, Deposit, Journal, JournalKind, ServiceContract
from posfleet.billing.services.closure import closure_credit
from posfleet.billing.verify import verify_ledger
from posfleet.closure import documents
from posfleet.closure.models import CaseStep, CaseTerminal, ClosureCase
from posfleet.closure.quote import effect_text, line_text
from posfleet.closure.runner import HANDLERS, advance
from posfleet.closure.selectors import case_view
from posfleet.closure.services import closure_inspect, closure_quote, closure_receive
from posfleet.closure.states import StepName
from posfleet.closure.tests.conftest import Setup, closable, person, request_and_approve
from posfleet.platform.context import Actor
from posfleet.platform.errors import ValidationFailed
from posfleet.testing.money import balance
from posfleet.testing.sessions import sign_in

SH = ZoneInfo("Asia/Shanghai")
# The contract starts on 2026-06-01 (conftest): closed on 2026-12-06, 6 of the minimum 12 months are
# served, so the penalty is 6 × ¥10.00; the first year's ¥99.00 fee is due and charged at closure.
FEE, PENALTY = 9_900, 6_000
# A deposit too small for what is owed: it pays the fee and ¥1.00 of the penalty; ¥59.00 stays owed.
DEPOSIT = 10_000
VALUE = 8_000  # the recovery value: ¥59.00 for the penalty still owed, ¥21.00 paid out


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=SH)


def closed_with_grade(world, grade: str, **terms: object) -> tuple[Setup, ClosureCase]:
    """Merchant A's terminal closed on 2026-12-06, its device back on the 9th, graded ``grade``."""
    with time_machine.travel(at(6), tick=False) as clock:
        setup = closable(world, **{"deposit_fen": DEPOSIT, "recovery_value_fen": VALUE, **terms})
        case = request_and_approve(setup)
        clock.move_to(at(9))
        warehouse = person(world, "warehouse")
        closure_receive(actor=warehouse, sn=setup.terminal.sn)
        closure_inspect(
            actor=warehouse,
            sn=setup.terminal.sn,
            grade=grade,
            note="" if grade == "A" else "worn case",
            disposal="refurbish",
        )
        advance(case.pk)
    case.refresh_from_db()
    assert case.status == "completed"
    return setup, case


def credits() -> list[Journal]:
    return list(Journal.objects.filter(kind=JournalKind.RECOVERY_CREDIT))


def test_the_quote_shows_the_recovery_value_as_a_conditional_line(world):
    with time_machine.travel(at(6), tick=False):
        setup = closable(world, recovery_value_fen=3_000)
        with translation.override("en"):
            quote = closure_quote(actor=person(world, "merchant_a"), sns=[setup.terminal.sn]).quote
            lines = {line.code: line for line in quote.lines}
            line = lines["recovery_value"]
            text = line_text({"code": line.code, "params": line.params})
            effect = effect_text(line.effect)
    assert (line.amount_fen, line.effect, line.terminal) == (3_000, "if", setup.terminal.sn)
    assert text.startswith("Device recovery value, credited to you — only if the device comes back as new")
    assert effect == "only if it applies"
    # Like the recovery fee and the damage prices, it is not counted in the expected totals.
    assert (quote.owed_fen, quote.expected_refund_fen, quote.expected_shortfall_fen) == (
        FEE + PENALTY,
        29_900 - FEE - PENALTY,
        0,
    )


def test_a_device_returned_as_new_credits_its_value_once(world):
    setup, case = closed_with_grade(world, "A")
    org, sn = world.merchant_a.organisation_id, setup.terminal.sn

    entry = CaseTerminal.objects.get(case=case)
    assert (entry.grade, entry.recovery_value_fen) == ("A", VALUE)
    deposit = Deposit.objects.get(contract=setup.contract)
    assert (deposit.refunded_fen, deposit.forfeited_fen) == (0, DEPOSIT)  # all of it for what was owed

    # One journal: Dr device recovery 80.00; Cr the penalty still owed 59.00; Cr bank 21.00 paid out.
    (journal,) = credits()
    assert journal.reference == f"closure_recovery_value:{case.number}:{sn}"
    assert journal.merchant_id == world.merchant_a.pk
    lines = sorted(journal.entries.values_list("account__kind", "amount_fen"))
    assert lines == [
        (AccountKind.BANK_CLEARING, -2_100),
        (AccountKind.DEVICE_RECOVERY, VALUE),
        (AccountKind.PENALTIES_RECEIVABLE, -5_900),
    ]
    assert balance(org, AccountKind.FEES_RECEIVABLE) == 0
    assert balance(org, AccountKind.PENALTIES_RECEIVABLE) == 0  # nothing is owed any more
    assert verify_ledger().ok

    refund = CaseStep.objects.get(case=case, name=StepName.REFUND).evidence
    assert {k: refund[k] for k in refund if k not in ("deposits", "recovery_credits")} == {
        "refund_fen": 0,  # the deposit's refund: the credit is not part of it
        "paid_owed_fen": DEPOSIT,
        "recovery_credited_fen": VALUE,
        "recovery_paid_owed_fen": 5_900,
        "recovery_paid_out_fen": 2_100,
        "still_owed_fen": 0,  # after the credit (the deposit alone left 59.00 owed)
    }
    assert refund["deposits"][0]["still_owed_fen"] == 5_900
    assert refund["recovery_credits"] == {
        sn: {
            "journal": journal.reference,
            "amount_fen": VALUE,
            "paid_fees_fen": 0,
            "paid_penalties_fen": 5_900,
            "paid_out_fen": 2_100,
            "still_owed_fen": 0,
        }
    }
    audit = AuditEvent.objects.get(event_type=EventType.RECOVERY_CREDITED)
    assert (audit.subject_type, audit.subject_id, audit.after["paid_out_fen"]) == (
        "journal",
        journal.reference,
        2_100,
    )

    # The case page and the API read model show the value recorded at inspection.
    view = case_view(world.users["merchant_a"], case)
    assert [(t["sn"], t["grade"], t["recovery_value_fen"]) for t in view.terminals] == [(sn, "A", VALUE)]

    # Running the refund step again (a crash after its effects) posts nothing new and says the same.
    journals, events = Journal.objects.count(), AuditEvent.objects.count()
    step = CaseStep.objects.get(case=case, name=StepName.REFUND)
    step.case = case
    again = HANDLERS[StepName.REFUND](step).evidence
    assert {k: v for k, v in again.items() if k != "deposits"} == {
        k: v for k, v in refund.items() if k != "deposits"
    }
    assert [d["journal"] for d in again["deposits"]] == [f"deposit_release:{deposit.pk}"]
    assert (Journal.objects.count(), AuditEvent.objects.count()) == (journals, events)
    assert verify_ledger().ok


def test_the_statement_shows_the_credit_posted(world):
    setup, case = closed_with_grade(world, "A")
    sn = setup.terminal.sn
    with translation.override("en"):
        doc = documents.statement(case)
        html = documents.render_statement(doc)
    rows = {(line.code, line.quoted_fen): (line.actual_fen, line.why) for line in doc.lines}
    assert rows[("recovery_value", VALUE)] == (
        VALUE,
        "credited: the device came back as new (grade A); ¥59.00 paid what was still owed, ¥21.00 was paid "
        "to you",
    )
    assert rows[("recovery_fee", 5_000)] == (0, "not charged: the device was returned on 9 Dec 2026")
    assert rows[("damage", 5_000)] == (0, "not charged: the device was graded A")
    totals = {t.code: (t.quoted_fen, t.actual_fen, t.why) for t in doc.totals}
    # The credit is not a charge: what was charged is what the quote said.
    assert totals["charged"] == (FEE + PENALTY, FEE + PENALTY, "")
    assert totals["refund"] == (0, 0, "")
    assert totals["recovery_credited"] == (0, VALUE, rows[("recovery_value", VALUE)][1])
    assert totals["still_owed"] == (5_900, 0, "the device recovery value paid ¥59.00 of what was still owed")
    order = ["charged", "deducted", "from_deposit", "refund", "recovery_credited", "still_owed"]
    assert list(totals) == order
    assert (doc.refund_fen, doc.still_owed_fen) == (0, 0)
    assert (doc.recovery_credited_fen, doc.recovery_paid_out_fen) == (VALUE, 2_100)
    assert doc.outcome_text == (
        "¥0.00 of the deposit was refunded to your settlement account; nothing is owed. The device recovery "
        "value credited to you, ¥80.00, paid ¥59.00 of what was owed and ¥21.00 to your settlement account."
    )
    assert f'data-testid="cs-line-recovery_value-{sn}"' in html
    assert 'data-testid="cs-total-recovery_credited"' in html


def test_the_case_page_and_the_api_show_the_recovery_value(world):
    setup, case = closed_with_grade(world, "A")
    sn = setup.terminal.sn
    merchant = sign_in(Client(), world.user("merchant_a"))
    with translation.override("en"):
        page = merchant.get(f"/console/closures/{case.number}/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert f'data-testid="closure-recovery-value-{sn}">recovery value ¥80.00<' in page.content.decode()
    detail = merchant.get(f"/api/v1/closures/{case.number}")
    assert detail.status_code == 200, detail.content
    (terminal,) = detail.json()["terminals"]
    assert (terminal["grade"], terminal["recovery_value_fen"]) == ("A", VALUE)
    refund = next(step for step in detail.json()["steps"] if step["name"] == "refund")
    assert (refund["evidence"]["recovery_credited_fen"], refund["evidence"]["recovery_paid_out_fen"]) == (
        VALUE,
        2_100,
    )


def test_a_worn_device_credits_nothing(world):
    _setup, case = closed_with_grade(world, "B")
    assert CaseTerminal.objects.get(case=case).recovery_value_fen == 0
    assert credits() == []
    refund = CaseStep.objects.get(case=case, name=StepName.REFUND).evidence
    assert (refund["recovery_credited_fen"], refund["recovery_paid_out_fen"], refund["still_owed_fen"]) == (
        0,
        0,
        5_900,
    )
    assert balance(world.merchant_a.organisation_id, AccountKind.PENALTIES_RECEIVABLE) == 5_900
    with translation.override("en"):
        doc = documents.statement(case)
    line = next(line for line in doc.lines if line.code == "recovery_value")
    assert (line.quoted_fen, line.actual_fen, line.why) == (
        VALUE,
        0,
        "not credited: the device was graded B, not as new",
    )
    assert doc.total("recovery_credited").actual_fen == 0
    assert doc.total("still_owed").actual_fen == 5_900
    assert "recovery value" not in doc.outcome_text
    assert verify_ledger().ok


def test_a_contract_without_a_recovery_value_credits_nothing(world):
    _setup, case = closed_with_grade(world, "A", recovery_value_fen=0)
    assert CaseTerminal.objects.get(case=case).recovery_value_fen == 0
    assert credits() == []
    assert "recovery_value" not in {line["code"] for line in case.quote["lines"]}
    with translation.override("en"):
        doc = documents.statement(case)
    assert "recovery_credited" not in {t.code for t in doc.totals}
    assert doc.total("still_owed").actual_fen == 5_900


def test_the_credit_pays_fees_then_penalties_then_the_merchant_once(world):
    """``closure_credit`` on its own: what is owed first (fees, then penalties), the rest paid out;
    the same reference again answers what it did."""
    with time_machine.travel(at(6), tick=False):
        setup = closable(world, deposit_fen=5_000)
        case = request_and_approve(setup)  # the contract ended: fee 99.00 and penalty 60.00 owed
    org = world.merchant_a.organisation_id
    assert (balance(org, AccountKind.FEES_RECEIVABLE), balance(org, AccountKind.PENALTIES_RECEIVABLE)) == (
        FEE,
        PENALTY,
    )
    job = Actor.job("closure")
    reference = f"closure_recovery_value:{case.number}:{setup.terminal.sn}"
    kwargs = {
        "actor": job,
        "merchant_id": world.merchant_a.pk,
        "organisation_id": org,
        "reference": reference,
        "memo": "test",
    }
    evidence = closure_credit(amount_fen=20_000, **kwargs)
    assert evidence == {
        "journal": reference,
        "amount_fen": 20_000,
        "paid_fees_fen": FEE,
        "paid_penalties_fen": PENALTY,
        "paid_out_fen": 20_000 - FEE - PENALTY,
        "still_owed_fen": 0,
    }
    journals, events = Journal.objects.count(), AuditEvent.objects.count()
    assert closure_credit(amount_fen=20_000, **kwargs) == evidence
    assert (Journal.objects.count(), AuditEvent.objects.count()) == (journals, events)
    # Nothing to credit posts nothing; a negative or fractional amount is refused.
    assert closure_credit(amount_fen=0, **{**kwargs, "reference": "other"})["journal"] is None
    for amount in (-1, 1.5, True):
        with pytest.raises(ValidationFailed):
            closure_credit(amount_fen=amount, **{**kwargs, "reference": "other"})  # type: ignore[arg-type]
    assert (Journal.objects.count(), AuditEvent.objects.count()) == (journals, events)
    assert verify_ledger().ok


def test_the_database_refuses_a_negative_recovery_value(world):
    setup, case = closed_with_grade(world, "B")
    for rows in (
        ServiceContract.objects.filter(pk=setup.contract.pk),
        CaseTerminal.objects.filter(case=case),
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            rows.update(recovery_value_fen=-1)
    assert ServiceContract.objects.get(pk=setup.contract.pk).recovery_value_fen == VALUE
    assert CaseTerminal.objects.get(case=case).recovery_value_fen == 0
