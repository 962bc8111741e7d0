"""Closure under concurrency (real threads, each with its own database connection): duplicate requests
make one case, concurrent approvals decide once, and 32 workers racing for the refund pay it once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections

from posfleet.audit.models import AuditEvent
from posfleet.billing.models import Deposit, Journal
from posfleet.billing.services.settlement import settlement_run
from posfleet.billing.verify import verify_ledger
from posfleet.closure.models import CaseStep, CaseTerminal, ClosureCase
from posfleet.closure.runner import advance
from posfleet.closure.services import (
    closure_decide,
    closure_inspect,
    closure_quote,
    closure_receive,
    closure_request,
)
from posfleet.closure.tests.conftest import closable, person
from posfleet.platform.clock import today
from posfleet.platform.context import Actor
from posfleet.platform.errors import DomainError
from posfleet.testing.personas import build_world

pytestmark = pytest.mark.django_db(transaction=True)


def race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``n`` threads started together; each result or the DomainError it raised."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except DomainError as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_duplicate_requests_make_one_case() -> None:
    world = build_world()
    setup = closable(world)
    requester = person(world, "merchant_a")
    digest = closure_quote(actor=requester, sns=[setup.terminal.sn]).quote.digest
    results = race(
        8,
        lambda _i: closure_request(
            actor=requester, sns=[setup.terminal.sn], reason="cost", quote_digest=digest
        ),
    )
    made = [r for r in results if isinstance(r, ClosureCase)]
    assert len(made) == 1, results
    refused = Counter(type(r).__name__ for r in results if isinstance(r, DomainError))
    assert sum(refused.values()) == 7, results
    assert ClosureCase.objects.count() == 1
    assert CaseTerminal.objects.filter(open=True).count() == 1
    assert AuditEvent.objects.filter(event_type="closure.requested").count() == 1
    assert AuditEvent.objects.filter(event_type="terminal.deactivated").count() == 1


def test_concurrent_approvals_decide_once() -> None:
    world = build_world()
    setup = closable(world)
    requester = person(world, "merchant_a")
    digest = closure_quote(actor=requester, sns=[setup.terminal.sn]).quote.digest
    case = closure_request(actor=requester, sns=[setup.terminal.sn], reason="cost", quote_digest=digest)
    deciders = [person(world, "reviewer"), person(world, "admin")] * 4
    results = race(8, lambda i: closure_decide(actor=deciders[i], number=case.number, decision="approve"))
    assert len([r for r in results if isinstance(r, ClosureCase)]) == 1, results
    assert AuditEvent.objects.filter(event_type="closure.approved").count() == 1
    assert CaseStep.objects.filter(case=case).count() == 9


def test_thirty_two_workers_racing_for_the_refund_pay_it_once(settings) -> None:
    settings.POSFLEET_CLOSURE = {**settings.POSFLEET_CLOSURE, "STEP_LEASE_SECONDS": 0}  # every claim stale
    world = build_world()
    setup = closable(world)
    requester = person(world, "merchant_a")
    digest = closure_quote(actor=requester, sns=[setup.terminal.sn]).quote.digest
    case = closure_request(actor=requester, sns=[setup.terminal.sn], reason="cost", quote_digest=digest)
    ClosureCase.objects.filter(pk=case.pk).update(requested_at=case.requested_at - timedelta(days=1))
    settlement_run(actor=Actor.job("settle"), business_date=today() - timedelta(days=1))
    closure_decide(actor=person(world, "reviewer"), number=case.number, decision="approve")
    advance(case.pk)
    closure_receive(actor=person(world, "warehouse"), sn=setup.terminal.sn)
    closure_inspect(actor=person(world, "warehouse"), sn=setup.terminal.sn, grade="A", disposal="refurbish")
    assert CaseStep.objects.get(case=case, name="refund").state == "pending"

    race(32, lambda _i: advance(case.pk))
    advance(case.pk)  # whatever a lost race left to do

    deposit = Deposit.objects.get(contract=setup.contract)
    assert Journal.objects.filter(reference=f"deposit_release:{deposit.pk}").count() == 1
    # 299.00 − 99.00 fee − 60.00 penalty, grade A: no damage.
    assert (deposit.status, deposit.refunded_fen) == ("refunded", 14_000)
    case.refresh_from_db()
    assert case.status == "completed"
    assert verify_ledger().ok
