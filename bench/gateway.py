#!/usr/bin/env python3
"""The ISO 8583 gateway (``posfleet gateway``) against a bare asyncio responder, in the same run.

    python bench/gateway.py                             # SQLite, 64 terminals, 3 rounds of 10 s (~6 min)
    python bench/gateway.py --postgres                  # also PostgreSQL at 127.0.0.1:5432
    python bench/gateway.py --terminals 16 --duration 4 --repeat 1 --cutoffs 2   # a quick look (~2 min)
    python bench/gateway.py --src /path/to/src          # measure another source tree

Setup (a child, untimed, on a template database copied for every phase): ``--terminals`` K active
terminals (plus one per cut-off trial), each of its own merchant on the standard plan, by bulk inserts;
then every one gets a real master key through ``fleet.services.keys_issue_missing`` (the keys are what
the gateway checks MACs with), and three days of sales before today (60 a terminal a day, written
through ingest 4 at a time, as the gateway's poster writes them); then ``ANALYZE`` (SQLite: ``PRAGMA
optimize``), as autovacuum would. A gateway in service runs on such a database, not on empty tables.

**baseline** (a child): a bare asyncio responder (uvloop, streams) that decodes each request with
pyiso8583 and the gateway's own spec, reads the terminal's status with one indexed query on the same
database (TID, joined to its merchant's MID; SQLite: a blocking ``sqlite3`` call on the event loop;
PostgreSQL: psycopg async, 8 connections), and encodes the same answer (echoed fields, 37, 38, 39, a
field 64 of zeros): no MAC, no issuer, no ledger — the floor.

**ours** (children): ``posfleet gateway`` as ``make run`` starts it (its checks in 4 database threads,
its default, or ``--threads``; its approvals written by its poster process) and
``posfleet simulate issuer`` behind it, both real processes.

**load** (a child per measurement): the terminal simulator's core (``gateway.simulation``: one
asyncio connection per terminal) on K terminals, the simulator's sale workload (QR/chip/tap/swipe,
log-normal amounts, 2 % declined by the issuer, 2 % reversals), no heartbeats, answers' MACs not
checked (the responder's are zeros). Against ours the terminals sign on first; against the baseline
they hold a session key of their own (the responder does not check it), so the client does the same
work. Two loads per server:

- **max**: closed loop, every terminal sends its next message when the answer is in; msg/s and
  p50/p99 over ``--duration`` seconds after a ``--warmup``;
- **at 200/s**: open loop, Poisson arrivals at ``--open-rate`` msg/s whatever the answers take;
  p50/p99 from writing the message to reading its answer, and p99 from when it was due.

Rounds alternate baseline, ours (``--repeat`` pairs), each server on a fresh copy of the template.

**client ceiling** (once, first): the same load against a canned responder that answers every frame
with one pre-encoded 0210 without reading it: what the load client can do on this machine. The baseline
and ours are compared with it, and the CPU of every process is reported (``/proc``, utime + stime over
the phase; the gateway's figure includes its poster process, ADR 0039), to show which side limits.

**cut-off** (``--cutoffs`` trials, a fresh gateway): a terminal streams sales (closed loop) through the
gateway; once 50 are approved, another process (started beforehand, Django loaded) deactivates it
through ``fleet.services.terminal_transition``, and reports the moment the call returned (the commit);
the stream goes on for a second. Measured: the delay from that moment to the first ``58`` read by the
terminal (``CLOCK_MONOTONIC`` is one clock for every process), approvals of messages sent after it, and
approvals recorded after the terminal's ``status_changed_at`` (both must be 0).

**memory** (a fresh gateway): its ``VmHWM`` after start, then with ``--idle`` (1,000) connections open,
each having sent one heartbeat, held for 3 s (the gateway and its poster process added up).

Output: one JSON line per phase, then Markdown tables. Goals (issue 13): ≥ 0.5 of the baseline's
msg/s, p99 < 50 ms at 200 msg/s, 0 approvals after a deactivation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from harness import bench_parties, child_env, each_engine, run_child, spread  # noqa: E402

SH = ZoneInfo("Asia/Shanghai")
SINCE = datetime(2026, 1, 1, tzinfo=SH)
GOAL_RATIO = 0.5
HISTORY_DAYS = 3  # the terminals' sales of these days before today are in the template (``_history``)
HISTORY_SALES = 60  # a terminal's sales a day in that history
HISTORY_GROUP = 4  # sales written a call, as the gateway's poster writes them at 200 msg/s
GOAL_P99_MS = 50.0
TPDU_BYTES = 5


def tid_of(n: int) -> str:
    return f"G{n:07d}"


def _setup_django() -> None:
    import django

    django.setup()


def _settle() -> None:
    """The bench's own processes (the load client, the baseline, the canned responder) freeze what
    start-up made, as posfleet's gateway, poster and simulators do (ADR 0043): neither side of a
    comparison, nor the client timing both, stops for a full collection of it in a measured window.
    Written here, not imported, so that ``--src`` can measure a tree from before that ADR."""
    gc.collect()
    gc.freeze()


# -- setup (child) ------------------------------------------------------------------------------


def phase_setup(terminals: int) -> dict[str, object]:
    _setup_django()
    from django.core.management import call_command
    from django.db import transaction

    call_command("migrate", verbosity=0, skip_checks=True)
    from posfleet.billing.defaults import ensure_standard_plan
    from posfleet.billing.models import PlanAssignment
    from posfleet.fleet.models import StatusPeriod, Terminal
    from posfleet.fleet.services import keys_issue_missing

    started = time.perf_counter()
    with transaction.atomic():
        agent, model, shops = bench_parties(terminals)
        plan = ensure_standard_plan()
        rows = Terminal.objects.bulk_create(
            [
                Terminal(
                    sn=f"GWB{m:08d}",
                    model=model,
                    status="active",
                    tid=tid_of(m),
                    agent=agent,
                    merchant=shop,
                    status_changed_at=SINCE,
                )
                for m, shop in enumerate(shops)
            ],
            batch_size=5000,
        )
        StatusPeriod.objects.bulk_create(
            [StatusPeriod(terminal=t, status="active", started_at=SINCE) for t in rows], batch_size=5000
        )
        PlanAssignment.objects.bulk_create(
            [PlanAssignment(merchant=shop, plan=plan, effective_from=SINCE.date()) for shop in shops],
            batch_size=5000,
        )
    fixtures = time.perf_counter() - started
    keys = keys_issue_missing(by="bench")
    keyed = time.perf_counter() - started - fixtures
    history = _history(rows)
    from django.db import connection

    with connection.cursor() as cursor:  # statistics, as autovacuum / PRAGMA optimize would gather them
        cursor.execute("ANALYZE" if connection.vendor == "postgresql" else "PRAGMA optimize")
    return {
        "phase": "setup",
        "terminals": terminals,
        "keys_issued": keys,
        "history": history,
        "fixtures_seconds": round(fixtures, 1),
        "keys_seconds": round(keyed, 1),
        "history_seconds": round(time.perf_counter() - started - fixtures - keyed, 1),
    }


def _history(terminals: list[Any]) -> int:
    """Every terminal's sales of the ``HISTORY_DAYS`` days before today (``HISTORY_SALES`` a day), written
    as the gateway writes them: through the money code's ingest, ``HISTORY_GROUP`` sales a call (each
    call a capture journal per merchant, its entries, an audit event). The phases then start, as a
    gateway in service does, on tables the database has statistics for and of about the shape it will
    see — not on empty ones, whose first plans (made for a handful of rows, then kept by the connection:
    prepared statements, foreign-key checks) scan more and more as the tables grow (bench/README,
    2026-12-08, "a database with a history")."""
    import random
    from datetime import timedelta

    from posfleet.billing.services.transactions import TxnIn, transactions_ingest
    from posfleet.platform import clock
    from posfleet.platform.context import Actor

    rng = random.Random(7)
    methods = [
        ("qr", "scan", ""),
        ("credit", "insert", "622588******1234"),
        ("debit", "swipe", "621700******5678"),
    ]
    today = clock.now().astimezone(SH).date()
    items = []
    for back in range(HISTORY_DAYS, 0, -1):
        day = today - timedelta(days=back)
        for n in range(1, HISTORY_SALES + 1):
            for terminal in terminals:
                method, entry, card = methods[n % len(methods)]
                items.append(
                    TxnIn(
                        tid=terminal.tid,
                        batch_no="000001",
                        trace_no=f"{n:06d}",
                        txn_date=day,
                        occurred_at=datetime(day.year, day.month, day.day, 9, 0, tzinfo=SH)
                        + timedelta(seconds=n * 30),
                        method=method,
                        entry_mode=entry,
                        amount_fen=int(10 ** rng.uniform(2, 5)),
                        card_masked=card,
                    )
                )
    actor = Actor.job("bench-history")
    for start in range(0, len(items), HISTORY_GROUP):
        results = transactions_ingest(actor=actor, items=items[start : start + HISTORY_GROUP])
        refused = [r for r in results if not r.ok]
        if refused:
            raise SystemExit(f"history: {len(refused)} refused, the first {refused[0]}")
    return len(items)


# -- the responders (children) ------------------------------------------------------------------


def _frame(tpdu: bytes, message: bytes) -> bytes:
    body = tpdu + message
    return struct.pack(">H", len(body)) + body


def _answer_tpdu(tpdu: bytes) -> bytes:
    return tpdu[:1] + tpdu[3:5] + tpdu[1:3]


async def _serve(handler: Any, port: int, ready: str) -> None:
    server = await asyncio.start_server(handler, "127.0.0.1", port, backlog=512)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _settle()
    print(ready, flush=True)
    async with server:
        await stop.wait()
        server.close()


def phase_baseline_server(port: int, pool_size: int) -> None:
    """The bare responder: decode, one indexed query, encode (no Django: the driver directly)."""
    import iso8583
    import uvloop

    from posfleet.gateway import dialect as d

    url = os.environ["POSFLEET_DATABASE_URL"]
    sql = (
        "SELECT t.status FROM fleet_terminal t JOIN parties_merchant m ON m.id = t.merchant_id "
        "WHERE t.tid = {p} AND m.mid = {p}"
    )
    echo = ("3", "4", "11", "12", "13", "25", "41", "42", "49", "60")

    async def main() -> None:
        if url.startswith("sqlite"):
            import sqlite3

            db = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            query = sql.format(p="?")

            async def status_of(tid: str, mid: str) -> str | None:
                row = db.execute(query, (tid, mid)).fetchone()
                return row[0] if row else None

        else:
            import psycopg

            pool: asyncio.Queue[Any] = asyncio.Queue()
            for _ in range(pool_size):
                pool.put_nowait(await psycopg.AsyncConnection.connect(url, autocommit=True))
            query = sql.format(p="%s")

            async def status_of(tid: str, mid: str) -> str | None:
                conn = await pool.get()
                try:
                    cursor = await conn.execute(query, (tid, mid), prepare=True)
                    row = await cursor.fetchone()
                finally:
                    pool.put_nowait(conn)
                return row[0] if row else None

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    size = struct.unpack(">H", await reader.readexactly(2))[0]
                    body = await reader.readexactly(size)
                    doc, _ = iso8583.decode(body[TPDU_BYTES:], d.SPEC)
                    status = await status_of(doc.get("41", ""), doc.get("42", ""))
                    mti = doc["t"]
                    fields = {k: doc[k] for k in echo if k in doc}
                    fields.update(
                        {
                            "t": d.ANSWER_OF.get(mti, d.SALE_ANSWER),
                            "37": "000000000001",
                            "38": "123456",
                            "39": d.APPROVED if status == "active" else d.NOT_PERMITTED,
                            "64": "00" * 8,
                        }
                    )
                    raw, _ = iso8583.encode(fields, d.SPEC)
                    writer.write(_frame(_answer_tpdu(body[:TPDU_BYTES]), bytes(raw)))
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        await _serve(handle, port, "baseline: listening")

    uvloop.run(main())


def phase_canned_server(port: int) -> None:
    """Answers every frame with one pre-encoded 0210, without reading it: the load client's ceiling."""
    import uvloop

    from posfleet.gateway import codec
    from posfleet.gateway import dialect as d

    canned = codec.encode(
        d.SALE_ANSWER,
        {
            "3": "000000",
            "4": "000000001000",
            "11": "000001",
            "25": "00",
            "37": "000000000001",
            "38": "123456",
            "39": d.APPROVED,
            "41": "G0000000",
            "42": "900000000000000",
            "49": "156",
            "64": "00" * 8,
        },
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack(">H", await reader.readexactly(2))[0]
                body = await reader.readexactly(size)
                writer.write(_frame(_answer_tpdu(body[:TPDU_BYTES]), canned))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    uvloop.run(_serve(handle, port, "canned: listening"))


# -- load (child) -------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]


def phase_load(
    *,
    port: int,
    target: str,
    rate: float,
    duration: float,
    warmup: float,
    terminals: int,
    seed: int,
    pids: dict[str, int],
) -> dict[str, object]:
    _setup_django()
    import uvloop
    from django.db import connections

    from posfleet.gateway.simulated_traffic import Tally, load_profiles
    from posfleet.gateway.simulation import Simulation
    from posfleet.platform import paycrypto

    profiles = load_profiles(tids=[tid_of(m) for m in range(terminals)])
    connections.close_all()
    tally = Tally(events=[])
    ours = target == "ours"
    simulation = Simulation(
        profiles,
        "127.0.0.1",
        port,
        rate=rate,
        reversals=0.02,
        declines=0.02,
        heartbeat=0,
        seed=seed,
        sign_on=ours,
        check_mac=False,
        tally=tally,
    )
    if not ours:  # the responder checks no MAC: a session key of the terminal's own, same client work
        for player in simulation.players:
            player.terminal.session_key = paycrypto.new_key(player.terminal.scheme)

    def sample() -> tuple[float, float, dict[str, float]]:
        """(now, this process's CPU seconds, the servers' CPU seconds)."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        servers = {name: _cpu_seconds(pid) for name, pid in pids.items()}
        return time.monotonic(), usage.ru_utime + usage.ru_stime, servers

    samples = []

    async def main() -> None:
        task = asyncio.create_task(simulation.run(warmup + duration))
        await asyncio.sleep(warmup)
        samples.append(sample())
        await asyncio.sleep(duration)
        samples.append(sample())
        await task

    _settle()
    uvloop.run(main())
    (begin, cpu_begin, servers_begin), (end, cpu_end, servers_end) = samples
    seconds = end - begin
    window = [e for e in (tally.events or []) if begin <= e[2] < end and e[3] in ("sale", "reversal")]
    ms = [(e[2] - e[1]) * 1000 for e in window]
    from_due = [(e[2] - e[0]) * 1000 for e in window]
    codes: dict[str, int] = {}
    for e in window:
        codes[e[4]] = codes.get(e[4], 0) + 1
    return {
        "phase": "load",
        "target": target,
        "mode": "closed" if rate <= 0 else f"open {rate:g}/s",
        "terminals": len(profiles),
        "duration": duration,
        "messages": len(window),
        "per_s": len(window) / seconds,
        "p50_ms": _percentile(ms, 0.50),
        "p99_ms": _percentile(ms, 0.99),
        "p99_from_due_ms": _percentile(from_due, 0.99),
        "max_ms": max(ms, default=0.0),
        "codes": dict(sorted(codes.items())),
        "errors": dict(tally.errors),
        # CPU seconds a second over the measured window (1.0 = one core busy)
        "client_cpu_share": round((cpu_end - cpu_begin) / seconds, 3),
        "server_cpu_share": {
            name: round((servers_end[name] - servers_begin[name]) / seconds, 3) for name in pids
        },
    }


# -- cut-off (child) ----------------------------------------------------------------------------


def phase_deactivator() -> None:
    """Deactivates the SN of each line read, through the service; prints when the call returned."""
    _setup_django()
    from posfleet.fleet.services import terminal_transition
    from posfleet.platform.context import Actor

    actor = Actor.system("bench")
    print("ready", flush=True)
    for line in sys.stdin:
        sn = line.strip()
        if not sn:
            continue
        began = time.monotonic()
        terminal_transition(actor=actor, sn=sn, action="deactivate", reason="cost")
        committed = time.monotonic()
        print(
            json.dumps({"sn": sn, "committed": committed, "call_ms": (committed - began) * 1000}), flush=True
        )


async def _trial(simulation: Any, tally: Any, sn: str, deactivator: subprocess.Popen[str]) -> dict[str, Any]:
    """Stream until 50 sales are approved, have ``sn`` deactivated, stream one second more; the
    deactivator's answer (when its call returned)."""

    def deactivate() -> dict[str, Any]:
        assert deactivator.stdin is not None
        assert deactivator.stdout is not None
        deactivator.stdin.write(sn + "\n")
        deactivator.stdin.flush()
        return dict(json.loads(deactivator.stdout.readline()))

    task = asyncio.create_task(simulation.run(None))
    deadline = time.monotonic() + 30
    while tally.approved("sale") < 50:
        if time.monotonic() > deadline or task.done():
            simulation.stop.set()
            await task
            raise SystemExit(f"the stream of {sn} did not flow: {tally.summary()}")
        await asyncio.sleep(0.005)
    commit = await asyncio.to_thread(deactivate)
    await asyncio.sleep(1.0)
    simulation.stop.set()
    await task
    return commit


def phase_cutoff(*, port: int, first: int, trials: int, seed: int) -> dict[str, object]:
    _setup_django()
    import uvloop
    from django.db import connections

    from posfleet.billing.models import Transaction
    from posfleet.fleet.models import Terminal
    from posfleet.gateway.simulated_traffic import Tally, load_profiles
    from posfleet.gateway.simulation import Simulation

    deactivator = _started([sys.executable, __file__, "--phase", "deactivator"], dict(os.environ), "ready")
    results = []
    try:
        for n in range(trials):
            tid = tid_of(first + n)
            [profile] = load_profiles(tids=[tid])
            connections.close_all()
            tally = Tally(events=[])
            simulation = Simulation(
                [profile],
                "127.0.0.1",
                port,
                rate=0,
                reversals=0,
                declines=0,
                heartbeat=0,
                seed=seed + n,
                check_mac=False,
                tally=tally,
            )
            commit = uvloop.run(_trial(simulation, tally, profile.sn, deactivator))
            cut = commit["committed"]
            events = tally.events or []
            refused = [e for e in events if e[4] == "58"]
            first_58 = min((e[2] for e in refused), default=None)
            terminal = Terminal.objects.get(tid=tid)
            results.append(
                {
                    "tid": tid,
                    "approved_before": sum(1 for e in events if e[4] == "00" and e[1] < cut),
                    "sent_after": sum(1 for e in events if e[1] >= cut),
                    "approved_sent_after": sum(1 for e in events if e[4] == "00" and e[1] >= cut),
                    "approved_answered_after": sum(1 for e in events if e[4] == "00" and e[2] >= cut),
                    "other_codes_after": sorted({e[4] for e in events if e[1] >= cut} - {"58"}),
                    "delay_ms": None if first_58 is None else (first_58 - cut) * 1000,
                    "deactivation_call_ms": commit["call_ms"],
                    "recorded_after_status_change": Transaction.objects.filter(
                        tid=tid, status="approved", occurred_at__gte=terminal.status_changed_at
                    ).count(),
                }
            )
            connections.close_all()
    finally:
        _stop(deactivator)
    delays = [r["delay_ms"] for r in results if r["delay_ms"] is not None]
    return {
        "phase": "cutoff",
        "trials": results,
        "delay_ms": delays,
        "approvals_after": sum(r["approved_sent_after"] + r["recorded_after_status_change"] for r in results),
        "never_refused": sum(1 for r in results if r["delay_ms"] is None),
    }


# -- idle connections (child) -------------------------------------------------------------------


def phase_idle(*, port: int, connections_wanted: int, terminals: int) -> None:
    """Opens the connections, each with one heartbeat; says so; holds them until a line on stdin."""
    _setup_django()
    from django.db import connections

    from posfleet.gateway import codec
    from posfleet.gateway.simulated_traffic import load_profiles
    from posfleet.gateway.terminal import TPDU, Terminal, read_answer

    profiles = load_profiles(tids=[tid_of(m) for m in range(terminals)])
    connections.close_all()
    socks = []
    approved = 0
    for n in range(connections_wanted):
        p = profiles[n % len(profiles)]
        client = Terminal(tid=p.tid, mid=p.mid, master_key=p.master_key, scheme=p.scheme)
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(codec.frame(TPDU, client.heartbeat_request(firmware=p.firmware)))
        head = _recv(sock, 2)
        body = _recv(sock, struct.unpack(">H", head)[0])
        approved += read_answer(body[TPDU_BYTES:]).get("39") == "00"
        socks.append(sock)
    print(json.dumps({"open": len(socks), "heartbeats_approved": approved}), flush=True)
    sys.stdin.readline()
    for sock in socks:
        sock.close()
    print(json.dumps({"phase": "idle", "closed": len(socks)}), flush=True)


def _recv(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


# -- processes ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _started(
    command: list[str], env: dict[str, str], ready: str, *, log: Path | None = None, timeout: float = 90
) -> subprocess.Popen[str]:
    """A child whose stdout we read, once it printed a line starting with ``ready`` (others skipped)."""
    stderr: Any = log.open("ab") if log is not None else sys.stderr
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        readable, _, _ = select.select([process.stdout], [], [], 0.5)
        if readable:
            line = process.stdout.readline()
            if line.startswith(ready):
                return process
            if not line and process.poll() is not None:
                break
            seen.append(line)
        elif process.poll() is not None:
            break
    process.kill()
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise SystemExit(f"{command[1:4]} did not start: {''.join(seen)[-2000:]!r}\n{tail}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tree(pid: int) -> list[int]:
    """A live process and its descendants (the gateway's poster process, ADR 0039)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found.extend(_tree(int(child)))
    return found


def _proc_status(pid: int, field: str) -> int:
    """``VmHWM``/``VmRSS`` of a live process and its descendants, added up, in kB."""
    total = 0
    for member in _tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
    return total


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a live process and its descendants (all their threads)."""
    total = 0
    for member in _tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class Servers:
    """The server side of one phase: the baseline responder, the canned one, or ours (gateway + issuer)."""

    def __init__(self, kind: str, env: dict[str, str], work: Path, threads: int | None = None) -> None:
        self.kind = kind
        self.port = _free_port()
        self.processes: dict[str, subprocess.Popen[str]] = {}
        log = work / f"{kind}.log"
        if kind == "ours":
            issuer_port = _free_port()
            posfleet = [sys.executable, "-m", "posfleet"]
            self.processes["issuer"] = _started(
                [*posfleet, "simulate", "issuer", "--port", str(issuer_port)],
                env,
                "issuer simulator: listening",
                log=log,
            )
            extra = ["--threads", str(threads)] if threads else []
            self.processes["gateway"] = _started(
                [
                    *posfleet,
                    "gateway",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--issuer",
                    f"127.0.0.1:{issuer_port}",
                    *extra,
                ],
                env,
                "gateway: listening",
                log=log,
            )
        else:
            self.processes[kind] = _started(
                [sys.executable, __file__, "--phase", f"{kind}-server", "--port", str(self.port)],
                env,
                f"{kind}: listening",
                log=log,
            )

    @property
    def main(self) -> subprocess.Popen[str]:
        return self.processes["gateway" if self.kind == "ours" else self.kind]

    def stop(self) -> None:
        for process in self.processes.values():
            _stop(process)


def _load(
    servers: Servers, args: argparse.Namespace, env: dict[str, str], rate: float, seed: int
) -> dict[str, Any]:
    pids = ",".join(f"{name}={p.pid}" for name, p in servers.processes.items())
    result = run_child(
        __file__,
        [
            "--phase",
            "load",
            "--target",
            servers.kind,
            "--port",
            str(servers.port),
            "--rate",
            str(rate),
            "--duration",
            str(args.duration),
            "--warmup",
            str(args.warmup),
            "--terminals",
            str(args.terminals),
            "--seed",
            str(seed),
            "--pids",
            pids,
        ],
        env,
    )
    result["load1"] = os.getloadavg()[0]
    return result


# -- the run ------------------------------------------------------------------------------------


def bench_engine(engine, args: argparse.Namespace, work: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    template = engine.create("template")
    spare = args.cutoffs
    setup = run_child(
        __file__, ["--phase", "setup", "--terminals", str(args.terminals + spare)], child_env(template, work)
    )
    print(json.dumps({**setup, "engine": engine.name}), flush=True)
    summary: dict[str, Any] = {"engine": engine.name, "rounds": [], "setup": setup}

    if args.ceiling:
        env = child_env(template, work)
        canned = Servers("canned", env, work)
        try:
            ceiling = _load(canned, args, env, 0, 1)
        finally:
            canned.stop()
        ceiling["engine"] = engine.name
        print(json.dumps(ceiling), flush=True)
        summary["ceiling"] = ceiling

    for n in range(args.repeat):
        pair: dict[str, Any] = {}
        for kind in ("baseline", "ours"):
            url = engine.create(f"{kind}{n}", template)
            env = child_env(url, work)
            servers = Servers(kind, env, work, threads=args.threads)
            try:
                closed = _load(servers, args, env, 0, 100 + n)
                opened = _load(servers, args, env, args.open_rate, 200 + n)
                peak = _proc_status(servers.main.pid, "VmHWM")
            finally:
                servers.stop()
                engine.drop(url)
            for result in (closed, opened):
                result.update({"engine": engine.name, "round": n, "server_peak_kb": peak})
                print(json.dumps(result), flush=True)
            pair[kind] = {"closed": closed, "open": opened}
        summary["rounds"].append(pair)

    if args.cutoffs:
        url = engine.create("cutoff", template)
        env = child_env(url, work)
        servers = Servers("ours", env, work, threads=args.threads)
        try:
            cutoff = run_child(
                __file__,
                [
                    "--phase",
                    "cutoff",
                    "--port",
                    str(servers.port),
                    "--first",
                    str(args.terminals),
                    "--trials",
                    str(args.cutoffs),
                ],
                env,
            )
        finally:
            servers.stop()
            engine.drop(url)
        cutoff["engine"] = engine.name
        print(json.dumps(cutoff), flush=True)
        summary["cutoff"] = cutoff

    if args.idle:
        url = engine.create("idle", template)
        env = child_env(url, work)
        servers = Servers("ours", env, work, threads=args.threads)
        try:
            time.sleep(1.0)
            pid = servers.main.pid
            idle_hwm, idle_rss = _proc_status(pid, "VmHWM"), _proc_status(pid, "VmRSS")
            holder = _started(
                [
                    sys.executable,
                    __file__,
                    "--phase",
                    "idle",
                    "--port",
                    str(servers.port),
                    "--connections",
                    str(args.idle),
                    "--terminals",
                    str(args.terminals),
                ],
                env,
                '{"open"',
                timeout=600,
            )
            time.sleep(3.0)
            memory = {
                "phase": "memory",
                "engine": engine.name,
                "connections": args.idle,
                "start_hwm_kb": idle_hwm,
                "start_rss_kb": idle_rss,
                "open_rss_kb": _proc_status(pid, "VmRSS"),
                "open_hwm_kb": _proc_status(pid, "VmHWM"),
            }
            assert holder.stdin is not None
            holder.stdin.write("done\n")
            holder.stdin.flush()
            holder.wait(timeout=60)
        finally:
            servers.stop()
            engine.drop(url)
        memory["per_connection_kb"] = (memory["open_rss_kb"] - memory["start_rss_kb"]) / args.idle
        print(json.dumps(memory), flush=True)
        summary["memory"] = memory
    engine.drop(template)
    return summary


def _ms(results: list[dict[str, Any]], key: str) -> str:
    return spread([r[key] for r in results], ",.1f")


def _pair(results: list[dict[str, Any]]) -> str:
    return f"{_ms(results, 'p50_ms')} / {_ms(results, 'p99_ms')}"


def _cpu_ms(result: dict[str, Any], *servers: str) -> float:
    """The servers' CPU time per message answered, in ms: what a message costs whatever else runs on the
    machine (the throughput is what the cores left over allow)."""
    cores = sum(result["server_cpu_share"][name] for name in servers)
    return 1000 * cores * result["duration"] / max(1, result["messages"])


def _report(summaries: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    print(
        f"{args.terminals} terminals (one asyncio connection each, the simulator's sale workload), "
        f"{args.repeat} round(s) of {args.duration:g} s after {args.warmup:g} s of warm-up; "
        "median [range] over rounds."
    )
    print()
    print(
        "| engine | baseline msg/s | **ours msg/s** | **ratio** (goal ≥ 0.5) | baseline p50 / p99 ms "
        "| ours p50 / p99 ms | CPU (cores) baseline; ours gateway + issuer; client "
        "| server CPU ms per message: baseline; ours (gateway + issuer) |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for s in summaries if args.repeat else []:
        base = [r["baseline"]["closed"] for r in s["rounds"]]
        ours = [r["ours"]["closed"] for r in s["rounds"]]
        ratios = [o["per_s"] / b["per_s"] for o, b in zip(ours, base, strict=True) if b["per_s"]]
        ratio = statistics.median(ratios) if ratios else 0.0
        met = "met" if ratio >= GOAL_RATIO else "not met"
        cpu = (
            f"{statistics.median(r['server_cpu_share']['baseline'] for r in base):.2f}; "
            f"{statistics.median(r['server_cpu_share']['gateway'] for r in ours):.2f} + "
            f"{statistics.median(r['server_cpu_share']['issuer'] for r in ours):.2f}; "
            f"{statistics.median(r['client_cpu_share'] for r in ours):.2f}"
        )
        per_message = (
            f"{statistics.median(_cpu_ms(r, 'baseline') for r in base):.2f}; "
            f"{statistics.median(_cpu_ms(r, 'gateway', 'issuer') for r in ours):.2f}"
        )
        print(
            f"| {s['engine']} | {_ms(base, 'per_s')} | **{_ms(ours, 'per_s')}** | "
            f"**{ratio:.3f}** [{min(ratios, default=0):.3f}–{max(ratios, default=0):.3f}] ({met}) | "
            f"{_pair(base)} | {_pair(ours)} | {cpu} | {per_message} |"
        )
    print()
    print(
        "| engine | open loop | baseline p50 / p99 ms | **ours p50 / p99 ms** "
        f"(goal p99 < {GOAL_P99_MS:g}) | ours p99 from due | ours answers (codes) |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for s in summaries if args.repeat else []:
        base = [r["baseline"]["open"] for r in s["rounds"]]
        ours = [r["ours"]["open"] for r in s["rounds"]]
        met = "met" if statistics.median(o["p99_ms"] for o in ours) < GOAL_P99_MS else "not met"
        codes: dict[str, int] = {}
        for o in ours:
            for code, count in o["codes"].items():
                codes[code] = codes.get(code, 0) + count
        answers = ", ".join(f"{c} {n:,}" for c, n in sorted(codes.items()))
        print(
            f"| {s['engine']} | {args.open_rate:g} msg/s ({_ms(ours, 'per_s')} answered/s) | "
            f"{_pair(base)} | **{_pair(ours)}** ({met}) | {_ms(ours, 'p99_from_due_ms')} | {answers} |"
        )
    if any("cutoff" in s or "memory" in s for s in summaries):
        print()
        print(
            "| engine | cut-off: deactivation's commit → first 58, ms | **approvals after** (goal 0) "
            f"| deactivation call ms | gateway RSS: started → {args.idle:,} idle connections (per "
            "connection) | VmHWM |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for s in summaries:
            cut = s.get("cutoff") or {}
            mem = s.get("memory") or {}
            delays = cut.get("delay_ms") or []
            calls = [t["deactivation_call_ms"] for t in cut.get("trials", [])]
            never = f", {cut['never_refused']} never refused" if cut.get("never_refused") else ""
            delay = f"{spread(delays, ',.1f')} ({len(delays)} trials{never})" if delays else "n/a"
            memory = (
                f"{mem['start_rss_kb'] / 1024:,.0f} MB → {mem['open_rss_kb'] / 1024:,.0f} MB "
                f"({mem['per_connection_kb']:,.1f} kB) | {mem['open_hwm_kb'] / 1024:,.0f} MB"
                if mem
                else "n/a | n/a"
            )
            print(
                f"| {s['engine']} | {delay} | **{cut.get('approvals_after', 'n/a')}** | "
                f"{spread(calls, ',.1f') if calls else 'n/a'} | {memory} |"
            )
    ceilings = [s["ceiling"] for s in summaries if "ceiling" in s]
    if ceilings and args.repeat:
        top = max(c["per_s"] for c in ceilings)
        best = max(r["baseline"]["closed"]["per_s"] for s in summaries for r in s["rounds"])
        print()
        print(
            f"Load client ceiling (canned responder, same workload): {top:,.0f} msg/s at "
            f"{statistics.median(c['client_cpu_share'] for c in ceilings):.2f} of a core; the fastest "
            f"baseline round reached {best / top:.2f} of it."
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--terminals", type=int, default=64, help="K concurrent terminals (default 64)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per load (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before the measure (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of baseline, ours (default 3)")
    parser.add_argument("--open-rate", type=float, default=200.0, help="open-loop msg/s (default 200)")
    parser.add_argument("--cutoffs", type=int, default=5, help="cut-off trials (default 5; 0: none)")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections (default 1,000; 0: none)")
    parser.add_argument("--threads", type=int, default=None, help="gateway database threads (its default)")
    parser.add_argument("--no-ceiling", dest="ceiling", action="store_false", help="skip the client ceiling")
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--src", help="the source tree to measure (default: this checkout's src)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--target", default="ours", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--pool", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--pids", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        result: dict[str, object] | None = None
        if args.phase == "setup":
            result = phase_setup(args.terminals)
        elif args.phase == "baseline-server":
            phase_baseline_server(args.port, args.pool)
        elif args.phase == "canned-server":
            phase_canned_server(args.port)
        elif args.phase == "load":
            result = phase_load(
                port=args.port,
                target=args.target,
                rate=args.rate,
                duration=args.duration,
                warmup=args.warmup,
                terminals=args.terminals,
                seed=args.seed,
                pids={k: int(v) for k, v in (x.split("=") for x in args.pids.split(",") if x)},
            )
        elif args.phase == "deactivator":
            phase_deactivator()
        elif args.phase == "cutoff":
            result = phase_cutoff(port=args.port, first=args.first, trials=args.trials, seed=args.seed)
        elif args.phase == "idle":
            phase_idle(port=args.port, connections_wanted=args.connections, terminals=args.terminals)
        else:
            raise SystemExit(f"unknown phase {args.phase}")
        if result is not None:
            print(json.dumps(result))
        return
    src = Path(args.src).resolve() if args.src else BENCH.parent / "src"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH", "")]))
    summaries = each_engine("gateway", args, bench_engine)
    _report(summaries, args)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()
