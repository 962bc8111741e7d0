"""The gateway's limits (``server.Limits``) against real sockets: a slow client is cut at the read
timeout while the others are served, an idle one at the idle timeout, a flood is held at
``max_connections`` without starving the terminals already connected, and many terminals selling at
once each get every approval recorded exactly once, with MACed answers."""

from __future__ import annotations

import asyncio
import select
import socket
import struct
import threading
import time
from dataclasses import replace

import pytest
from django.db import connections

from posfleet.billing.models import Transaction
from posfleet.fleet.models import Terminal as TerminalRow
from posfleet.fleet.states import Status
from posfleet.gateway import codec
from posfleet.gateway import dialect as d
from posfleet.gateway.issuer import HostIssuer
from posfleet.gateway.server import Gateway, Limits
from posfleet.gateway.terminal import TPDU, Reply, Terminal
from posfleet.gateway.tests.conftest import Running, terminal_of
from posfleet.platform import paycrypto
from posfleet.testing.money import on_standard_plan
from posfleet.testing.personas import make_terminal
from posfleet.testing.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)
CARD = "6225880123456789"


@pytest.fixture
def active(world) -> TerminalRow:  # type: ignore[no-untyped-def]
    on_standard_plan(world.merchant_a)
    return make_terminal(world, "SN-LIM-0001", Status.ACTIVE)


def _closed(sock: socket.socket, timeout: float) -> bool:
    """True when the gateway closes ``sock`` (without a byte of answer) within ``timeout``."""
    ready, _w, _x = select.select([sock], [], [], timeout)
    if not ready:
        return False
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _connect(running: Running) -> socket.socket:
    sock = socket.create_connection((running.host, running.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def test_a_slow_client_is_cut_at_the_read_timeout_and_the_others_are_served_meanwhile(  # type: ignore[no-untyped-def]
    gateway_factory, active: TerminalRow
) -> None:
    limits = Limits(read_timeout=1.0, idle_timeout=30)
    running = gateway_factory(limits=limits)
    pos = terminal_of(active, running)
    assert pos.sign_on().approved
    assert pos.session_key is not None
    message = codec.encode_with_mac(
        d.SALE,
        pos.sale_fields(700, pan=CARD),
        lambda data: paycrypto.mac(pos.scheme, pos.session_key, data),  # type: ignore[arg-type]
    )
    body = TPDU + message
    with _connect(running) as slow:
        slow.sendall(struct.pack(">H", len(body)))
        began = time.monotonic()
        sent, served_at, closed_at = 0, None, None
        while closed_at is None:
            try:
                slow.sendall(body[sent : sent + 1])  # one byte every 0.1 s: 8 s for the whole body
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.monotonic()
                break
            sent += 1
            assert sent < len(body), "the whole body went through: the read timeout never fired"
            if served_at is None and sent == 2:  # meanwhile, the good terminal
                reply = pos.sale(800, pan=CARD)
                assert reply.approved
                assert reply.mac_ok
                served_at = time.monotonic()
            if _closed(slow, 0.1):
                closed_at = time.monotonic()
    assert served_at is not None
    assert served_at < closed_at  # served while the slow one still hung on
    assert served_at - began < limits.read_timeout
    assert limits.read_timeout * 0.9 <= closed_at - began <= limits.read_timeout + 1.5, closed_at - began
    assert pos.sale(900, pan=CARD).approved  # and after
    assert Transaction.objects.filter(tid=active.tid).count() == 2  # the slow sale was never recorded


def test_an_idle_client_is_disconnected_at_the_idle_timeout(gateway_factory, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    limits = Limits(idle_timeout=1.0, read_timeout=5)
    running = gateway_factory(limits=limits)
    began = time.monotonic()
    silent = _connect(running)  # never sends a byte
    pos = terminal_of(active, running)  # one message, then nothing
    assert pos.heartbeat().approved
    answered = time.monotonic()
    assert pos.sock is not None
    try:
        assert _closed(silent, limits.idle_timeout + 2), "the silent client was never disconnected"
        silent_for = time.monotonic() - began
        assert _closed(pos.sock, limits.idle_timeout + 2), "the idle terminal was never disconnected"
        idle_for = time.monotonic() - answered
    finally:
        silent.close()
        pos.close()
    assert limits.idle_timeout * 0.9 <= silent_for <= limits.idle_timeout + 1.5, silent_for
    assert limits.idle_timeout * 0.9 <= idle_for <= limits.idle_timeout + 1.5, idle_for
    pos.connect(running.host, running.port)  # a new connection is welcome
    assert pos.heartbeat().approved
    pos.close()


def test_a_flood_is_held_at_max_connections_and_the_connected_are_still_served(  # type: ignore[no-untyped-def]
    gateway_factory, active: TerminalRow
) -> None:
    limits = Limits(max_connections=50)
    running = gateway_factory(limits=limits)
    good = terminal_of(active, running)  # connection 1 of 50
    assert good.sign_on().approved
    template = replace(good, sock=None, session_key=None)
    flood: list[Terminal] = []

    def join(count: int) -> None:
        for _ in range(count):
            client = replace(template)
            client.connect(running.host, running.port, timeout=5)
            assert client.heartbeat().approved  # served: the gateway counted this connection
            flood.append(client)

    def refused() -> bool:
        with _connect(running) as extra:
            return _closed(extra, 2.0)

    try:
        join(limits.max_connections - 1)
        assert running.gateway.connections == limits.max_connections
        began = time.monotonic()
        assert refused(), "connection 51 was not closed"
        assert time.monotonic() - began < 1.0  # at once, not after a timeout
        assert running.gateway.counts.get("refused_connection") == 1
        assert good.sale(500, pan=CARD).approved  # the connected terminal does not notice the flood

        for client in flood[:10]:
            client.close()
        del flood[:10]
        deadline = time.monotonic() + 3
        while running.gateway.connections > limits.max_connections - 10:
            assert time.monotonic() < deadline, "closed connections were never let go"
            time.sleep(0.02)
        join(10)  # room again
        assert refused(), "the limit no longer holds once connections came and went"
        assert running.gateway.counts.get("refused_connection") == 2
        assert good.sale(600, pan=CARD).approved
    finally:
        for client in flood:
            client.close()
    assert Transaction.objects.filter(tid=active.tid, status="approved").count() == 2


def test_twenty_terminals_selling_at_once_get_every_approval_recorded_once(  # type: ignore[no-untyped-def]
    gateway, world
) -> None:
    on_standard_plan(world.merchant_a)
    rows = [make_terminal(world, f"SN-LIM-{i:04d}", Status.ACTIVE) for i in range(20)]
    clients = [terminal_of(row, gateway) for row in rows]
    replies: list[list[Reply]] = [[] for _ in clients]
    failures: list[BaseException] = []
    start = threading.Barrier(len(clients))

    def sell(i: int) -> None:
        client = clients[i]
        try:
            start.wait(10)
            assert client.sign_on().approved
            for k in range(10):  # amounts ending 10..19: none the issuer simulator refuses
                replies[i].append(client.sale(100 * (i + 1) + 10 + k, pan=CARD))
        except BaseException as exc:  # reported below, with the others
            failures.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=sell, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    answers = [reply for batch in replies for reply in batch]
    assert len(answers) == 200
    assert {reply.code for reply in answers} == {d.APPROVED}, sorted({reply.code for reply in answers})
    assert all(reply.mac_ok is True for reply in answers)
    recorded = Transaction.objects.filter(status="approved")
    assert recorded.count() == 200
    assert {str(pk) for pk in recorded.values_list("pk", flat=True)} == {
        str(int(reply.fields["37"])) for reply in answers
    }  # each answer names its own transaction
    for row, batch in zip(rows, replies, strict=True):
        mine = recorded.filter(tid=row.tid)
        assert mine.count() == 10
        assert set(mine.values_list("trace_no", flat=True)) == {reply.fields["11"] for reply in batch}
        assert sorted(mine.values_list("amount_fen", flat=True)) == sorted(int(r.fields["4"]) for r in batch)


def test_closing_the_gateway_closes_every_worker_connection() -> None:
    """``Gateway.close`` must close the database connection of every worker thread, also when a
    message's database work is still running (a shutdown under traffic)."""
    gateway = Gateway(issuer=HostIssuer("127.0.0.1", free_port()), threads=4)
    used: list[object] = []  # each worker's own connection wrapper
    lock = threading.Lock()

    def query(hold: float = 0.0) -> None:
        with lock:
            used.append(connections["default"])
        TerminalRow.objects.exists()
        time.sleep(hold)

    async def traffic() -> None:
        await asyncio.gather(*(gateway._db(query, 0.2) for _ in range(2)))  # two workers, two connections

    asyncio.run(traffic())
    # A message's database work, still running at shutdown (on whichever worker thread is free: one
    # of the two, or a third whose connection is registered only once its work ends).
    busy = threading.Thread(target=lambda: asyncio.run(gateway._db(query, 1.0)))
    busy.start()
    time.sleep(0.1)
    try:
        gateway.close()
        busy.join(10)
        left_open = [w for w in set(used) if w.connection is not None]  # type: ignore[attr-defined]
        assert not left_open, f"{len(left_open)} worker connection(s) left open by Gateway.close()"
    finally:
        for wrapper in set(used):  # do not leak them into the rest of the suite
            wrapper.inc_thread_sharing()  # type: ignore[attr-defined]
            wrapper.close()  # type: ignore[attr-defined]
            wrapper.dec_thread_sharing()  # type: ignore[attr-defined]
