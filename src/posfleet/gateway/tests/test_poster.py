"""The poster process of ``posfleet gateway`` (ADR 0039, 0041): approvals are written by a child
process; a child that dies between groups is replaced before the next one; a child that dies while
writing fails only what it was writing (answered ``96``, nothing recorded) and the next sales are
approved by a new one; a child that dies just after its commit has its sales answered as what they
are, recorded; a gateway killed outright leaves no poster behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from posfleet.billing.models import Transaction
from posfleet.fleet.states import Status
from posfleet.gateway import dialect as d
from posfleet.gateway import poster
from posfleet.gateway.tests.conftest import terminal_of
from posfleet.testing.money import on_standard_plan
from posfleet.testing.personas import make_terminal
from posfleet.testing.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def poster_of(pid: int) -> int:
    """The gateway's poster: its child running multiprocessing's spawn entry point."""
    for child in children(pid):
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
            return child
    raise AssertionError("the gateway has no poster process")


def gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # Exited, not yet reaped by its (new) parent. A killed process's first thread is a zombie
        # while its other threads (the poster's parent watch) still exit: the last of them closes
        # the process's files — its end of the gateway's pipe — so wait for them too.
        try:
            status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if status == "Z" and len(list(Path(f"/proc/{pid}/task").iterdir())) == 1:
                return True
        except FileNotFoundError:  # reaped meanwhile
            return True
        time.sleep(0.05)
    return False


def test_a_poster_killed_between_sales_is_replaced_before_the_next_one(processes, world) -> None:  # type: ignore[no-untyped-def]
    on_standard_plan(world.merchant_a)
    row = make_terminal(world, "SN-POST-0001", Status.ACTIVE)
    issuer_port = free_port()
    processes.start("issuer", "simulate", "issuer", "--port", str(issuer_port))
    running = processes.gateway("gateway", issuer_port)
    gateway_pid = processes.started["gateway"].pid
    client = terminal_of(row, running)
    assert client.sign_on().approved
    assert client.sale(1200, pan="6225880123456789").code == d.APPROVED

    first = poster_of(gateway_pid)
    os.kill(first, signal.SIGKILL)
    assert gone(first, 5)
    codes = [client.sale(1300 + n, pan="6225880123456789").code for n in range(5)]
    # Its end of the pipe closed while it had nothing: the next group goes to a new poster, none fails.
    assert codes == [d.APPROVED] * 5, (codes, processes.log("gateway"))
    assert poster_of(gateway_pid) != first

    recorded = sorted(Transaction.objects.filter(tid=row.tid).values_list("amount_fen", flat=True))
    approved = [1200] + [1300 + n for n, code in enumerate(codes) if code == d.APPROVED]
    assert recorded == approved  # every 00 recorded once; nothing recorded for a 96
    assert processes.started["gateway"].poll() is None, processes.log("gateway")


def test_a_killed_gateway_leaves_no_poster(processes, world) -> None:  # type: ignore[no-untyped-def]
    issuer_port = free_port()
    processes.gateway("gateway", issuer_port)
    gateway = processes.started["gateway"]
    poster = poster_of(gateway.pid)
    gateway.kill()
    gateway.wait(10)
    assert gone(poster, 5), "the poster outlived its gateway"


def test_a_stopped_gateway_closes_what_it_holds_and_says_so(processes, world) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM (a supervisor, Ctrl-C): the gateway stops listening, closes the terminals' connections
    (this one is still open), its issuer links, its poster and its database connections, and exits 0
    without an error in its log — after serving a sale, so there are some of each to close."""
    on_standard_plan(world.merchant_a)
    row = make_terminal(world, "SN-GW-STOP", Status.ACTIVE)
    issuer_port = free_port()
    processes.start("issuer", "simulate", "issuer", "--port", str(issuer_port))
    running = processes.gateway("gateway", issuer_port)
    pos = terminal_of(row, running)
    assert pos.sign_on().approved
    assert pos.sale(1_000, pan="6225880123456789").approved
    gateway = processes.started["gateway"]
    poster = poster_of(gateway.pid)
    gateway.terminate()
    assert gateway.wait(20) == 0, processes.log("gateway")
    log = processes.log("gateway")
    assert "gateway: stopped" in log
    assert "Traceback" not in log, log
    assert gone(poster, 5)


class DiesWhileWriting(poster.ThreadPoster):
    """A poster that writes its group (``commits``) or not, then is reported dead, as a process killed
    between its commit and its answer (or before its commit) is."""

    def __init__(self, run: Any, *, commits: bool) -> None:
        super().__init__(run)
        self.commits = commits

    async def post(self, items: poster.Items) -> poster.Answers:
        if self.commits:
            await super().post(items)
        raise poster.PosterDied("the poster was killed")


@pytest.mark.parametrize("commits", [True, False], ids=["after its commit", "before its commit"])
def test_a_poster_dead_mid_group_answers_what_the_database_holds(gateway, world, commits) -> None:  # type: ignore[no-untyped-def]
    on_standard_plan(world.merchant_a)
    row = make_terminal(world, "SN-POST-0002", Status.ACTIVE)
    client = terminal_of(row, gateway)
    assert client.sign_on().approved
    gateway.gateway.writer = DiesWhileWriting(gateway.gateway._db, commits=commits)
    reply = client.sale(4200, pan="6225880123456789")
    recorded = list(Transaction.objects.filter(tid=row.tid).values_list("amount_fen", "status"))
    if commits:  # recorded: the terminal is told so (00, with the transaction's id), nothing reversed
        assert (reply.code, recorded) == (d.APPROVED, [(4200, "approved")])
        assert int(reply.fields["37"]) == Transaction.objects.get(tid=row.tid).pk
    else:  # not recorded: 96, as any posting that fails
        assert (reply.code, recorded) == (d.SYSTEM_ERROR, [])
    assert not isinstance(gateway.gateway.writer, DiesWhileWriting)  # another poster took over
    assert client.sale(4300, pan="6225880123456789").code == d.APPROVED
