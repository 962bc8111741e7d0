"""A real ``kill -9`` of the process running a closure case at every step — right after it claimed
the step, and right after the step's effect but before it was recorded — then a restart: the case
completes, every money step is posted once, and the ledger and the audit chain verify (SQLite and
PostgreSQL: the runner runs in a subprocess on the test database)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection

from posfleet.audit.verify import verify_chain
from posfleet.billing.models import Deposit, Journal
from posfleet.billing.services.settlement import settlement_run
from posfleet.billing.verify import verify_ledger
from posfleet.closure.models import CaseStep, ClosureCase
from posfleet.closure.runner import CRASH_ENV
from posfleet.closure.services import (
    closure_decide,
    closure_inspect,
    closure_quote,
    closure_receive,
    closure_request,
)
from posfleet.closure.states import STEPS, CaseStatus
from posfleet.closure.tests.conftest import closable, person
from posfleet.platform.clock import today
from posfleet.platform.context import Actor
from posfleet.testing.personas import build_world

pytestmark = pytest.mark.django_db(transaction=True)


def database_url() -> str:
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
        return f"postgresql://{auth}@{settings['HOST']}:{settings['PORT'] or 5432}/{settings['NAME']}"
    return f"sqlite:///{settings['NAME']}"


def run_case(number: str, tmp_path: Path, crash: str | None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "posfleet.config.settings.dev",
        "POSFLEET_DATABASE_URL": database_url(),
        "POSFLEET_VAR_DIR": str(tmp_path / "var"),
        "POSFLEET_LOG_LEVEL": "WARNING",
        # The killed process's lease is over at once: the next run takes the step again.
        "POSFLEET_CLOSURE_STEP_LEASE_SECONDS": "0",
    }
    env.pop(CRASH_ENV, None)
    if crash:
        env[CRASH_ENV] = crash
    command = [sys.executable, "-m", "posfleet", "closure", "run", number]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_killed_at_every_step_the_case_completes_with_every_posting_once(tmp_path: Path) -> None:
    world = build_world()
    setup = closable(world)
    requester = person(world, "merchant_a")
    quote = closure_quote(actor=requester, sns=[setup.terminal.sn]).quote
    case = closure_request(actor=requester, sns=[setup.terminal.sn], reason="cost", quote_digest=quote.digest)
    # Asked yesterday, whose T+1 settlement has run: the final settlement is there to be found.
    yesterday = today() - timedelta(days=1)
    ClosureCase.objects.filter(pk=case.pk).update(requested_at=case.requested_at - timedelta(days=1))
    settlement_run(actor=Actor.job("settle"), business_date=yesterday)
    closure_decide(actor=person(world, "reviewer"), number=case.number, decision="approve")

    killed = []
    for spec in STEPS:
        for phase in ("claimed", "effect"):
            if spec.name == "inspect" and phase == "claimed":
                # The device is back: the warehouse receives and grades it (the return step is waiting).
                closure_receive(actor=person(world, "warehouse"), sn=setup.terminal.sn)
                closure_inspect(
                    actor=person(world, "warehouse"),
                    sn=setup.terminal.sn,
                    grade="C",
                    human_damage=True,
                    note="dropped",
                    disposal="scrap",
                )
            result = run_case(case.number, tmp_path, f"{spec.name}:{phase}")
            if result.returncode == -signal.SIGKILL:
                killed.append(f"{spec.name}:{phase}")
            else:
                assert result.returncode == 0, result.stdout + result.stderr
    finished = run_case(case.number, tmp_path, None)
    assert finished.returncode == 0, finished.stdout + finished.stderr

    case.refresh_from_db()
    assert case.status == CaseStatus.COMPLETED, finished.stdout
    # Every step with an effect was killed both before and after it (the return step's first run
    # waits for the parcel, so its effect point is reached once the device is back).
    for name in ("contract", "settle", "refund", "certificate"):
        assert {f"{name}:claimed", f"{name}:effect"} <= set(killed), killed
    assert all(
        step.attempts >= 2 for step in CaseStep.objects.filter(case=case, name__in=["contract", "refund"])
    )
    references = list(
        Journal.objects.filter(merchant_id=world.merchant_a.pk).values_list("reference", flat=True)
    )
    for reference in (
        f"closure_penalty:{setup.contract.pk}",
        f"closure_damage:{case.number}:{setup.terminal.sn}",
        f"deposit_release:{Deposit.objects.get(contract=setup.contract).pk}",
    ):
        assert references.count(reference) == 1, reference
    deposit = Deposit.objects.get(contract=setup.contract)
    # 299.00 − 99.00 fee − 60.00 penalty... the penalty and fee were charged on the day asked; grade C
    # caused by a person costs 300.00: the deposit covers what it can and refunds nothing.
    assert deposit.refunded_fen == 0
    assert deposit.status == "forfeited"
    assert verify_ledger().ok
    assert verify_chain().ok
