"""QUALITY.md's cut-off: a terminal sends a steady stream of sales to two gateway processes (``posfleet
gateway``, as `make run` starts it, behind one issuer simulator) while staff deactivate it. Once the
deactivation has committed, not one message is approved, on either gateway; every approval recorded is
dated before the deactivation."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from posfleet.billing.models import Transaction
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Status
from posfleet.gateway import dialect as d
from posfleet.gateway.tests.conftest import terminal_of
from posfleet.testing.money import on_standard_plan
from posfleet.testing.personas import SYSTEM, make_terminal
from posfleet.testing.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def test_no_approval_after_the_deactivation_commits(processes, world) -> None:  # type: ignore[no-untyped-def]
    on_standard_plan(world.merchant_a)
    row = make_terminal(world, "SN-CUT-0001", Status.ACTIVE)
    issuer_port = free_port()
    processes.start("issuer", "simulate", "issuer", "--port", str(issuer_port))
    gateways = [processes.gateway("gateway-1", issuer_port), processes.gateway("gateway-2", issuer_port)]
    clients = [terminal_of(row, running) for running in gateways]
    assert clients[0].sign_on().approved  # one device, two connections: one session key
    clients[1].session_key = clients[0].session_key
    for i, client in enumerate(clients):
        client.trace = i * 500_000  # two streams, traces that never meet
    sent: list[list[tuple[float, str]]] = [[], []]  # (time the request left, answer)
    stop = threading.Event()
    committed_at: list[float] = []

    def stream(i: int) -> None:
        client = clients[i]
        try:
            while not stop.is_set():
                began = time.monotonic()
                reply = client.sale(100 + i, pan="6225880123456789")
                sent[i].append((began, reply.code))
                time.sleep(0.005)  # ~200 messages a second over the two streams
        finally:
            connections.close_all()

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while sum(code == d.APPROVED for stream_ in sent for _, code in stream_) < 10:
        assert time.monotonic() < deadline, "the stream did not start flowing"
        time.sleep(0.05)
    terminal_transition(actor=SYSTEM, sn=row.sn, action="deactivate", reason="cost")
    committed_at.append(time.monotonic())
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join(30)

    cut = committed_at[0]
    before = [code for stream_ in sent for began, code in stream_ if began < cut]
    after = [code for stream_ in sent for began, code in stream_ if began >= cut]
    assert before.count(d.APPROVED) >= 10, "the stream was not flowing before the deactivation"
    assert after, "no message was sent after the deactivation"
    assert set(after) == {d.NOT_PERMITTED}, f"answers after the commit: {sorted(set(after))}"
    row.refresh_from_db()
    approved = Transaction.objects.filter(tid=row.tid, status="approved")
    assert approved.count() == before.count(d.APPROVED) + 0  # every approval the terminals saw, no other
    assert row.status_changed_at is not None
    assert all(t.occurred_at < row.status_changed_at for t in approved)
