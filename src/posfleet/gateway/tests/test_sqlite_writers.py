"""QUALITY.md's concurrent writers on SQLite with `make run`'s settings (long: `pytest -m long`).

The gateway, a worker and the scheduler run as real processes on one SQLite file; terminals send sales
at about 200 messages a second; meanwhile staff deactivate and reactivate other terminals and the
sweeps run, in this process. Nobody sees "database is locked", and every sale the gateway answered
`00` is recorded, once.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connection, connections

from posfleet.billing.models import Transaction
from posfleet.fleet.services import device_commands_expire, terminal_transition
from posfleet.fleet.states import Status
from posfleet.gateway import dialect as d
from posfleet.gateway.terminal import GatewayError
from posfleet.gateway.tests.conftest import terminal_of
from posfleet.testing.money import on_standard_plan
from posfleet.testing.personas import SYSTEM, make_terminal
from posfleet.testing.servers import free_port

pytestmark = [pytest.mark.long, pytest.mark.django_db(transaction=True)]

SELLERS, SECONDS, RATE = 20, 20.0, 200.0  # terminals, duration, messages a second in all
LOCKED = "database is locked"


@pytest.fixture
def long_only(request):  # type: ignore[no-untyped-def]
    if "long" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long: run with -m long")
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite bar")


def test_writers_at_once_see_no_lock_and_lose_no_posting(long_only, world, processes) -> None:  # type: ignore[no-untyped-def]
    on_standard_plan(world.merchant_a)
    sellers = [make_terminal(world, f"SN-SQ-{i:04d}", Status.ACTIVE) for i in range(SELLERS)]
    staffed = [make_terminal(world, f"SN-ST-{i:04d}", Status.ACTIVE) for i in range(3)]
    issuer_port = free_port()
    processes.start("issuer", "simulate", "issuer", "--port", str(issuer_port))
    processes.start("worker", "worker", "--interval", "0.2")
    processes.start("scheduler", "scheduler")
    running = processes.gateway("gateway", issuer_port)
    clients = [terminal_of(row, running) for row in sellers]
    answers: list[tuple[str, str, str]] = []  # (tid, trace, code)
    errors: list[str] = []
    stop = threading.Event()
    try:

        def sell(i: int) -> None:
            pos = clients[i]
            gap = SELLERS / RATE
            try:
                pos.sign_on()
                while not stop.is_set():
                    began = time.monotonic()
                    reply = pos.sale(1_000 + 10 * i, pan="6225880123456789")  # no amount the issuer declines
                    answers.append((pos.tid, reply.fields.get("11", ""), reply.code))
                    time.sleep(max(0.0, gap - (time.monotonic() - began)))
            except (GatewayError, OSError) as exc:
                errors.append(f"terminal {pos.tid}: {exc}")
            finally:
                connections.close_all()

        def staff() -> None:
            try:
                while not stop.is_set():
                    for row in staffed:
                        terminal_transition(actor=SYSTEM, sn=row.sn, action="deactivate", reason="cost")
                        terminal_transition(actor=SYSTEM, sn=row.sn, action="reactivate")
                    device_commands_expire()
            except OperationalError as exc:
                errors.append(f"staff: {exc}")
            finally:
                connections.close_all()

        threads = [threading.Thread(target=sell, args=(i,)) for i in range(SELLERS)]
        threads.append(threading.Thread(target=staff))
        for thread in threads:
            thread.start()
        time.sleep(SECONDS)
        stop.set()
        for thread in threads:
            thread.join(60)
    finally:
        processes.stop()

    logs = {name: processes.log(name) for name in processes.started}
    assert not errors, errors[:5]
    for name, text in logs.items():
        assert LOCKED not in text, f"{name}: {text[-2000:]}"
    approved = [(tid, trace) for tid, trace, code in answers if code == d.APPROVED]
    assert len(approved) > SELLERS * 10, f"too few sales went through: {len(approved)}"
    assert {code for _tid, _trace, code in answers} <= {d.APPROVED}, sorted({c for *_, c in answers})
    recorded = set(
        Transaction.objects.filter(tid__in=[r.tid for r in sellers], status="approved").values_list(
            "tid", "trace_no"
        )
    )
    assert recorded == set(approved)  # every approval recorded, nothing else, nothing twice
