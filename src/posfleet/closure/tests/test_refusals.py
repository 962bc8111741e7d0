"""Every refusal of a closure answers a clear error (in the requester's language) and changes nothing:
no status, no ledger, audit or outbox row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.utils import translation

from posfleet.closure.models import CaseStep, CaseTerminal, ClosureCase
from posfleet.closure.runner import advance
from posfleet.closure.services import (
    closure_decide,
    closure_inspect,
    closure_quote,
    closure_receive,
    closure_report_shipment,
    closure_request,
    closure_withdraw,
)
from posfleet.closure.tests.conftest import closable, person
from posfleet.fleet.models import Terminal
from posfleet.fleet.services import terminal_reactivate
from posfleet.fleet.states import Status
from posfleet.iam.stepup import StepUpRequired
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    Conflict,
    DomainError,
    GuardFailed,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from posfleet.testing.personas import make_terminal
from posfleet.testing.refusals import assert_nothing_recorded


def refused(error: type[DomainError], call: Callable[[], Any]) -> DomainError:
    """``call`` raises ``error`` and leaves every closure, terminal and money row as it was."""
    subjects = (
        Terminal.objects.all(),
        ClosureCase.objects.all(),
        CaseTerminal.objects.all(),
        CaseStep.objects.all(),
    )
    with assert_nothing_recorded(*subjects), pytest.raises(error) as caught:
        call()
    return caught.value


def asked(world, setup, who: str = "merchant_a") -> ClosureCase:  # type: ignore[no-untyped-def]
    actor = person(world, who)
    digest = closure_quote(actor=actor, sns=[setup.terminal.sn]).quote.digest
    return closure_request(actor=actor, sns=[setup.terminal.sn], reason="cost", quote_digest=digest)


def test_requests_refused(world):
    setup = closable(world)
    merchant = person(world, "merchant_a")
    digest = closure_quote(actor=merchant, sns=[setup.terminal.sn]).quote.digest
    sn = setup.terminal.sn
    # Another tenant's terminal does not exist for it.
    refused(NotFound, lambda: closure_quote(actor=person(world, "merchant_b"), sns=[sn]))
    refused(NotFound, lambda: closure_quote(actor=person(world, "agent_b"), sns=[sn]))
    # A terminal still in stock, or bound and never activated, cannot be closed.
    stock = make_terminal(world, "CLS0002", Status.IN_STOCK)
    refused(ValidationFailed, lambda: closure_quote(actor=person(world, "admin"), sns=[stock.sn]))
    bound = make_terminal(world, "CLS0003", Status.BOUND)
    refused(TransitionNotAllowed, lambda: closure_quote(actor=merchant, sns=[bound.sn]))
    # Nothing chosen, an unknown reason, "other" without a note, a reason only staff give.
    refused(ValidationFailed, lambda: closure_quote(actor=merchant, sns=[]))
    for reason, note in (("bored", ""), ("other", " "), ("provider_initiated", "")):
        refused(
            ValidationFailed,
            lambda reason=reason, note=note: closure_request(
                actor=merchant, sns=[sn], reason=reason, note=note, quote_digest=digest
            ),
        )
    # A stale quote, and no step-up.
    stale = refused(
        Conflict, lambda: closure_request(actor=merchant, sns=[sn], reason="cost", quote_digest="0" * 64)
    )
    assert stale.code == "quote_stale"
    assert stale.params["quote"]["digest"] == digest
    unverified = Actor.for_user(world.users["merchant_a"])
    refused(
        StepUpRequired,
        lambda: closure_request(actor=unverified, sns=[sn], reason="cost", quote_digest=digest),
    )


def test_a_refusal_speaks_the_requesters_language(world):
    stock = make_terminal(world, "CLS0004", Status.IN_STOCK)
    with translation.override("zh-hans"):
        error = refused(ValidationFailed, lambda: closure_quote(actor=person(world, "admin"), sns=[stock.sn]))
    assert "商户" in str(error.detail)


def test_a_second_case_for_the_same_terminal(world):
    setup = closable(world)
    case = asked(world, setup)
    error = refused(Conflict, lambda: asked(world, setup, "admin"))
    assert error.code == "closure_already_requested"
    assert case.number in str(error.detail)


def test_review_refused(world):
    setup = closable(world)
    case = asked(world, setup, "admin")
    # The requester does not decide (maker-checker); a merchant or agent never does.
    refused(
        PermissionDenied,
        lambda: closure_decide(actor=person(world, "admin"), number=case.number, decision="approve"),
    )
    refused(
        PermissionDenied,
        lambda: closure_decide(actor=person(world, "agent_a"), number=case.number, decision="approve"),
    )
    # A rejection says why; an approval needs a fresh step-up; a job does not decide.
    refused(
        ValidationFailed,
        lambda: closure_decide(actor=person(world, "reviewer"), number=case.number, decision="reject"),
    )
    refused(
        StepUpRequired,
        lambda: closure_decide(
            actor=Actor.for_user(world.users["reviewer"]), number=case.number, decision="approve"
        ),
    )
    refused(
        PermissionDenied, lambda: closure_decide(actor=Actor.job("x"), number=case.number, decision="approve")
    )
    # Another tenant's case is not there.
    refused(NotFound, lambda: closure_withdraw(actor=person(world, "merchant_b"), number=case.number))
    closure_decide(actor=person(world, "reviewer"), number=case.number, decision="approve")
    # Too late to withdraw or decide again.
    refused(
        TransitionNotAllowed, lambda: closure_withdraw(actor=person(world, "merchant_a"), number=case.number)
    )
    refused(
        TransitionNotAllowed,
        lambda: closure_decide(
            actor=person(world, "reviewer"), number=case.number, decision="reject", note="x"
        ),
    )


def test_return_and_inspection_refused(world):
    setup = closable(world)
    case = asked(world, setup)
    closure_decide(actor=person(world, "reviewer"), number=case.number, decision="approve")
    advance(case.pk)  # nothing to settle, no channel, no device credential: the return is asked for
    warehouse = person(world, "warehouse")
    sn = setup.terminal.sn
    # An unknown device, the wrong role, a tracking number that is not one, another tenant's case.
    refused(NotFound, lambda: closure_receive(actor=warehouse, sn="NOPE0000"))
    refused(PermissionDenied, lambda: closure_receive(actor=person(world, "merchant_a"), sn=sn))
    refused(
        ValidationFailed,
        lambda: closure_report_shipment(
            actor=person(world, "merchant_a"), number=case.number, tracking_no="<x>"
        ),
    )
    refused(
        NotFound,
        lambda: closure_report_shipment(
            actor=person(world, "merchant_b"), number=case.number, tracking_no="SF123456"
        ),
    )
    # A malformed inspection: refused before anything is read.
    for grade, human, note, disposal in (
        ("D", False, "", "refurbish"),
        ("C", True, "", "scrap"),  # damage needs a description
        ("A", True, "", "refurbish"),  # as new has no damage
        ("B", False, "", "keep"),
    ):
        refused(
            ValidationFailed,
            lambda grade=grade, human=human, note=note, disposal=disposal: closure_inspect(
                actor=warehouse, sn=sn, grade=grade, human_damage=human, note=note, disposal=disposal
            ),
        )
    # Graded before it is received.
    refused(
        TransitionNotAllowed, lambda: closure_inspect(actor=warehouse, sn=sn, grade="B", disposal="refurbish")
    )


def test_a_terminal_under_closure_is_not_restarted_behind_the_case(world):
    setup = closable(world)
    case = asked(world, setup)
    error = refused(
        GuardFailed, lambda: terminal_reactivate(actor=person(world, "merchant_a"), sn=setup.terminal.sn)
    )
    assert error.params["guard"] == "not_held_by_a_case"
    closure_withdraw(actor=person(world, "merchant_a"), number=case.number)
    assert Terminal.objects.get(pk=setup.terminal.pk).status == "active"  # it was active before
    assert not CaseTerminal.objects.filter(open=True).exists()
