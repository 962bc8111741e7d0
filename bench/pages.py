#!/usr/bin/env python3
"""The console's and the API's fleet-wide pages at a provider's scale: each page through the Django test
client (signed in), against the raw indexed SQL that reads the same rows, per fleet size.

    python bench/pages.py                              # 10,000 / 100,000 / 1,000,000 terminals, SQLite
    python bench/pages.py --sizes 10000,100000         # only these sizes
    python bench/pages.py --postgres                   # also PostgreSQL (scratch databases, dropped after)
    python bench/pages.py --postgres --no-sqlite --repeat 3
    python bench/pages.py --sizes 10000 --money-days 90   # with 90 days of sales: reports, agent page
    python bench/pages.py --sizes 1000000 --money-days 90 --history --keep /tmp/kept   # keep the grown db
    python bench/pages.py --sizes 1000000 --reuse sqlite:////tmp/kept/pages-1000000.sqlite3  # measure again

Each phase runs in its own subprocess on its own database:

- template: migrate, then the demo fleet through ``posfleet demo --terminals 10000 --money-days 0``
  (the demo's parties and users, 10,000 terminals in every state with their status periods and their
  audited history; the demo writes its rows in bulk and its history through the audit chain, see
  ``demo/build.py``). With ``--money-days N``, N days of the demo's sales and settlements too
  (through ``transactions_ingest``, as an acquirer's feed would), and the pages that read them are
  measured as well: the sales reports, an agent's own page, the transaction list.
  The pages are read as ``admin`` and as ``agent1`` (the demo's agent with the
  most terminals, with sub-agents), signed in; the API with the same session.
- grow (per size, on a copy of the template): the demo's terminals copied until the fleet has N
  terminals — same model, agent, merchant, store, status, expiry, firmware; SN = the demo SN + a
  two-digit copy number, a fresh TID for those that have one — by ``platform.bulk.insert_rows`` (the
  import's own insert path; a bulk fixture: the copies have no status periods or audit events of their
  own — with ``--history``, each copy gets its original's status periods and audit events, copied in
  bulk; the fleet's counters follow by their triggers). The month-end job then stores the ended
  months' report figures (timed, as ``month_end_seconds``: what the scheduler does every night), and
  the dashboards' figures of the last 30 days (``day_end_seconds``).
  Then (untimed for the pages) the counters' fold, as the scheduler does every 10 minutes, and
  ``VACUUM ANALYZE`` / ``ANALYZE``, as autovacuum would after a bulk insert.
- measure (per size, on that database): for every page, a warm-up request, then ``--repeat`` rounds
  of ours then raw:
  - **ours** — the page through ``django.test.Client`` with the user signed in
    (``testing.sessions.sign_in``: the login's last step): URL resolution, middleware, the view,
    its selectors, the template or the API's schema and JSON. Every answer must be 200.
  - **raw** — the SQL a hand-written page would at least run for the same rows, through the
    connection's cursor (rows fetched): the first page of rows in the page's order with the same
    filter (the indexes the schema has), or the grouped counts a chart shows. No total counts
    unless the page shows them as its figure (the dashboard's doughnut, the calendar's weeks).

Output: one JSON line per (size, page), then a Markdown table per engine: median ms [range] of ours
and raw, and the ratio ours / raw (medians). Goal (issue 14): every page under 1 s at 1,000,000.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import child_env, each_engine, run_child, spread  # noqa: E402

TODAY = date(2026, 12, 6)
BASE = 10_000  # the demo's size; larger fleets are copies of it
SIZES = (10_000, 100_000, 1_000_000)
STATUS = "suspended"  # the status the filter pages ask for: a minority (~5 % of the demo's fleet)


# -- phases (run in a child process) -------------------------------------------------------------


def phase_template(money_days: int) -> dict[str, object]:
    import django

    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0, skip_checks=True)
    with open(os.devnull, "w") as quiet:
        call_command(
            "demo", terminals=BASE, money_days=money_days, today=TODAY, stdout=quiet, skip_checks=True
        )
    from posfleet.billing.models import Transaction

    return {
        "phase": "template",
        "seconds": round(time.perf_counter() - started, 1),
        "transactions": Transaction.objects.count(),
    }


def _copy_history(last_base_pk: int) -> dict[str, int]:
    """Each copied terminal gets its original's history: its status periods and its audit events (the
    events' chain fields are copied as they are, and their sequence numbers are negative, so the real
    chain appends after them: a bulk fixture for reading, not a chain that verifies)."""
    from collections import defaultdict

    from posfleet.audit.models import AuditEvent
    from posfleet.fleet.models import StatusPeriod, Terminal
    from posfleet.platform.bulk import insert_rows

    base = dict(Terminal.objects.filter(pk__lte=last_base_pk).values_list("sn", "pk"))
    copies = list(Terminal.objects.filter(pk__gt=last_base_pk).order_by("pk").values_list("sn", "pk"))
    periods = defaultdict(list)
    for terminal, *rest in StatusPeriod.objects.filter(terminal_id__in=list(base.values())).values_list(
        "terminal_id", "status", "started_at", "ended_at"
    ):
        periods[terminal].append(rest)
    fields = [f.name for f in AuditEvent._meta.concrete_fields if f.name not in ("id", "seq", "subject_id")]
    events = defaultdict(list)
    for subject, *rest in (
        AuditEvent.objects.filter(subject_type="terminal", subject_id__in=list(base))
        .order_by("seq")
        .values_list("subject_id", *fields)
    ):
        events[subject].append(rest)
    copied_periods = insert_rows(
        StatusPeriod,
        ("terminal", "status", "started_at", "ended_at"),
        ((pk, *row) for sn, pk in copies for row in periods[base[sn[:-2]]]),
    )
    seq = iter(range(-(10**15), 0))
    copied_events = insert_rows(
        AuditEvent,
        ("seq", "subject_id", *fields),
        ((next(seq), sn, *row) for sn, _pk in copies for row in events[sn[:-2]]),
    )
    return {"status_periods_copied": copied_periods, "audit_events_copied": copied_events}


def phase_grow(size: int, with_history: bool) -> dict[str, object]:
    import django

    django.setup()
    from django.db import connection, transaction

    from posfleet.fleet.models import Terminal
    from posfleet.platform.bulk import insert_rows

    started = time.perf_counter()
    varying = [
        f.name for f in Terminal._meta.concrete_fields if not f.primary_key and f.name not in ("updated_at",)
    ]
    base = list(
        Terminal.objects.order_by("pk").values_list(*[Terminal._meta.get_field(n).attname for n in varying])
    )
    sn_at, tid_at = varying.index("sn"), varying.index("tid")

    def copies():  # type: ignore[no-untyped-def]
        made = len(base)
        copy = 1
        while made < size:
            for i, row in enumerate(base):
                if made >= size:
                    return
                out = list(row)
                out[sn_at] = f"{row[sn_at]}{copy:02d}"
                out[tid_at] = None if row[tid_at] is None else f"K{copy:02d}{i:05d}"
                yield out
                made += 1
            copy += 1

    last_base_pk = max(Terminal.objects.values_list("pk", flat=True))
    with transaction.atomic():
        inserted = insert_rows(Terminal, varying, copies())
    history = {}
    if with_history:
        with transaction.atomic():
            history = _copy_history(last_base_pk)
    grown = time.perf_counter() - started
    from posfleet.reports.models import MonthEnd
    from posfleet.reports.month_end import month_end_close

    MonthEnd.objects.all().delete()  # the template's were of its 10,000 terminals
    closing = time.perf_counter()
    closed = month_end_close()  # the scheduler's first run over the grown history: every month back
    close_seconds = time.perf_counter() - closing
    from posfleet.reports.days import day_end_close
    from posfleet.reports.models import DayEnd

    DayEnd.objects.all().delete()  # the template's were of its 10,000 terminals
    closing = time.perf_counter()
    days = day_end_close()  # the scheduler's first run: the dashboards' 30 days
    days_seconds = time.perf_counter() - closing
    from posfleet.fleet.models import TerminalTally
    from posfleet.fleet.services import tally_compact

    tally_rows = TerminalTally.objects.count()
    folding = time.perf_counter()
    folded = tally_compact()  # what the scheduler does every 10 minutes
    fold_seconds = time.perf_counter() - folding
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk insert
        else:
            cursor.execute("ANALYZE")
    return {
        "phase": "grow",
        "size": size,
        "copied": inserted,
        "terminals": Terminal.objects.count(),
        "seconds": round(grown, 1),
        "tally_rows_before_fold": tally_rows,
        "tally_rows": folded,
        "fold_seconds": round(fold_seconds, 2),
        **history,
        "months_closed": len(closed),
        "month_end_seconds": round(close_seconds, 2),
        "days_closed": len(days),
        "day_end_seconds": round(days_seconds, 2),
    }


def _pages(agent_path: str, sn_prefix: str, sn_part: str, today: date) -> list[dict[str, object]]:
    """(name, user, URL, raw SQL statements with their parameters) of every page measured."""
    from datetime import timedelta

    from django.db import connection

    from posfleet.enrollment.services.expiry import grace_days
    from posfleet.fleet.states import IN_SERVICE

    in_service = tuple(s.value for s in IN_SERVICE)
    marks = ", ".join(["%s"] * len(in_service))
    cols = "t.id, t.sn, t.tid, t.status, t.service_expires_on, t.status_changed_at, m.name, a.code, mer.mid"
    joins = (
        "FROM fleet_terminal t JOIN fleet_terminalmodel m ON m.id = t.model_id "
        "LEFT JOIN parties_agent a ON a.id = t.agent_id "
        "LEFT JOIN parties_merchant mer ON mer.id = t.merchant_id"
    )
    scope = (
        " JOIN parties_agent sa ON sa.id = t.agent_id JOIN iam_organisation so ON so.id = sa.organisation_id"
        " WHERE so.path LIKE %s"
    )
    like = agent_path + "%"
    # The agent's subtree as the fastest hand-written count reads it: its agents first, then their
    # terminals through the index that leads with the agent (a join on the path scans the fleet).
    agents = (
        "SELECT sa.id FROM parties_agent sa JOIN iam_organisation so ON so.id = sa.organisation_id"
        " WHERE so.path LIKE %s"
    )
    monday = today - timedelta(days=today.weekday())
    count_status = "SELECT t.status, COUNT(*) FROM fleet_terminal t{scope} GROUP BY t.status"
    count_model = (
        "SELECT m.maker, m.name, COUNT(*) FROM fleet_terminal t "
        "JOIN fleet_terminalmodel m ON m.id = t.model_id"
        "{scope} GROUP BY m.maker, m.name"
    )
    expiry_where = (
        f" t.status IN ({marks}) AND t.merchant_id IS NOT NULL AND t.service_expires_on >= %s"
        " AND t.service_expires_on < %s"
    )
    upper = sn_prefix[:-1] + chr(ord(sn_prefix[-1]) + 1)
    # A part of an SN anywhere in it, through each engine's trigram index (fleet/migrations/0010).
    if connection.vendor == "postgresql":
        anywhere = ("t.sn LIKE %s OR t.tid LIKE %s", [f"%{sn_part}%", f"%{sn_part}%"])
    else:
        anywhere = (
            "t.id IN (SELECT rowid FROM fleet_terminal_text WHERE fleet_terminal_text MATCH %s)",
            [f'"{sn_part}"'],
        )
    return [
        {
            "page": "dashboard (admin)",
            "user": "admin",
            "url": "/",
            "raw": [(count_status.format(scope=""), []), (count_model.format(scope=""), [])],
        },
        {
            "page": "dashboard (agent)",
            "user": "agent1",
            "url": "/",
            "raw": [
                (
                    "SELECT t.agent_id, t.status, COUNT(*) FROM fleet_terminal t"
                    f" WHERE t.agent_id IN ({agents}) GROUP BY t.agent_id, t.status",
                    [like],
                ),
                (
                    "SELECT t.agent_id, m.maker, m.name, COUNT(*) FROM fleet_terminal t"
                    " JOIN fleet_terminalmodel m ON m.id = t.model_id"
                    f" WHERE t.agent_id IN ({agents}) GROUP BY t.agent_id, m.maker, m.name",
                    [like],
                ),
            ],
        },
        {
            "page": "device list",
            "user": "admin",
            "url": "/terminals/",
            "raw": [(f"SELECT {cols} {joins} ORDER BY t.sn LIMIT 50", [])],
        },
        {
            "page": "device list (agent)",
            "user": "agent1",
            "url": "/terminals/",
            "raw": [
                (
                    f"SELECT {cols} {joins} JOIN iam_organisation ao ON ao.id = a.organisation_id"
                    " WHERE ao.path LIKE %s ORDER BY t.sn LIMIT 50",
                    [like],
                )
            ],
        },
        {
            "page": f"status filter ({STATUS})",
            "user": "admin",
            "url": f"/terminals/?status={STATUS}",
            "raw": [(f"SELECT {cols} {joins} WHERE t.status = %s ORDER BY t.sn LIMIT 50", [STATUS])],
        },
        {
            "page": f"SN search ({sn_prefix})",
            "user": "admin",
            "url": f"/terminals/?q={sn_prefix}",
            "raw": [
                (
                    f"SELECT {cols} {joins} WHERE t.sn >= %s AND t.sn < %s ORDER BY t.sn LIMIT 50",
                    [sn_prefix, upper],
                )
            ],
        },
        {
            "page": f"SN search, anywhere ({sn_part})",
            "user": "admin",
            "url": f"/terminals/?q={sn_part}",
            "raw": [(f"SELECT {cols} {joins} WHERE {anywhere[0]} ORDER BY t.sn LIMIT 50", anywhere[1])],
        },
        {
            "page": "expiry calendar",
            "user": "admin",
            "url": "/expiry/",
            "raw": [
                (
                    "SELECT t.service_expires_on, COUNT(*) FROM fleet_terminal t WHERE"
                    + expiry_where
                    + " GROUP BY t.service_expires_on",
                    [*in_service, monday, monday + timedelta(weeks=12)],
                ),
                (
                    f"SELECT {cols} {joins} WHERE"
                    + expiry_where.replace("< %s", "<= %s")
                    + " ORDER BY t.service_expires_on, t.sn LIMIT 50",
                    [*in_service, today - timedelta(days=grace_days()), today + timedelta(days=30)],
                ),
            ],
        },
        {
            "page": "expiry calendar (agent)",
            "user": "agent1",
            "url": "/expiry/",
            "raw": [
                (
                    "SELECT t.service_expires_on, COUNT(*) FROM fleet_terminal t"
                    + scope
                    + " AND"
                    + expiry_where
                    + " GROUP BY t.service_expires_on",
                    [like, *in_service, monday, monday + timedelta(weeks=12)],
                ),
            ],
        },
        {
            "page": "API list",
            "user": "admin",
            "url": "/api/v1/terminals",
            "raw": [(f"SELECT {cols} {joins} ORDER BY t.sn LIMIT 51", [])],
        },
        {
            "page": f"API list status={STATUS}",
            "user": "admin",
            "url": f"/api/v1/terminals?status={STATUS}",
            "raw": [(f"SELECT {cols} {joins} WHERE t.status = %s ORDER BY t.sn LIMIT 51", [STATUS])],
        },
        {
            "page": f"API list q={sn_prefix}",
            "user": "admin",
            "url": f"/api/v1/terminals?q={sn_prefix}",
            "raw": [
                (
                    f"SELECT {cols} {joins} WHERE t.sn >= %s AND t.sn < %s ORDER BY t.sn LIMIT 51",
                    [sn_prefix, upper],
                )
            ],
        },
        {
            "page": f"API list q={sn_part} (anywhere)",
            "user": "admin",
            "url": f"/api/v1/terminals?q={sn_part}",
            "raw": [(f"SELECT {cols} {joins} WHERE {anywhere[0]} ORDER BY t.sn LIMIT 51", anywhere[1])],
        },
        {
            "page": "API list (agent)",
            "user": "agent1",
            "url": "/api/v1/terminals",
            "raw": [
                (
                    f"SELECT {cols} {joins} JOIN iam_organisation ao ON ao.id = a.organisation_id"
                    " WHERE ao.path LIKE %s ORDER BY t.sn LIMIT 51",
                    [like],
                )
            ],
        },
    ]


def _history_pages(agent_path: str, today: date) -> list[dict[str, object]]:
    """The reports over the fleet's history (12 months). Raw: what a hand-written report reads for
    them — the status periods covering the last month's end, and the year's terminal events grouped."""
    from posfleet.reports.history import month_moment
    from posfleet.reports.scope import months_back, start_of

    firsts = months_back(12, today)
    moment = month_moment(firsts[-2])
    agents = (
        "SELECT sa.id FROM parties_agent sa JOIN iam_organisation so ON so.id = sa.organisation_id"
        " WHERE so.path LIKE %s"
    )
    like = agent_path + "%"
    at_end = (
        "SELECT t.model_id, p.status, COUNT(*) FROM fleet_terminal t"
        " JOIN fleet_statusperiod p ON p.terminal_id = t.id"
        " WHERE p.started_at < %s AND (p.ended_at IS NULL OR p.ended_at >= %s){scope}"
        " GROUP BY t.model_id, p.status"
    )
    events = (
        "SELECT e.event_type, e.reason, COUNT(*) FROM audit_auditevent e"
        " WHERE e.subject_type = 'terminal' AND e.occurred_at >= %s"
        " AND e.event_type IN ('terminal.activated', 'terminal.deactivated', 'terminal.deregistered')"
        " GROUP BY e.event_type, e.reason"
    )
    return [
        {
            "page": "report: fleet by month (admin)",
            "user": "admin",
            "url": "/reports/fleet/?months=12",
            "raw": [(at_end.format(scope=""), [moment, moment])],
        },
        {
            "page": "report: fleet by month (agent)",
            "user": "agent1",
            "url": "/reports/fleet/?months=12",
            "raw": [(at_end.format(scope=f" AND t.agent_id IN ({agents})"), [moment, moment, like])],
        },
        {
            "page": "report: activity (admin)",
            "user": "admin",
            "url": "/reports/activity/?months=12",
            "raw": [(events, [start_of(firsts[0])])],
        },
        {  # raw: the fleet-wide count (checking each event's merchant against the agent adds to it)
            "page": "report: activity (agent)",
            "user": "agent1",
            "url": "/reports/activity/?months=12",
            "raw": [(events, [start_of(firsts[0])])],
        },
    ]


def _money_pages(agent_path: str, agent_code: str, today: date) -> list[dict[str, object]]:
    """The pages that read sales, when the template has them. Their raw baseline is what a
    hand-written report reads: the transactions themselves, grouped (ours reads the sales by month
    that ingest keeps, docs/adr/0036)."""
    from posfleet.reports.scope import months_back

    first = months_back(12, today)[0]
    agents = (
        "SELECT sa.id FROM parties_agent sa JOIN iam_organisation so ON so.id = sa.organisation_id"
        " WHERE so.path LIKE %s"
    )
    like = agent_path + "%"
    mine = f" AND x.merchant_id IN (SELECT id FROM parties_merchant WHERE agent_id IN ({agents}))"
    volume = (
        "SELECT x.txn_date, x.method, COUNT(*), SUM(x.amount_fen) FROM billing_transaction x"
        " WHERE x.kind = 'sale' AND x.status = 'approved' AND x.txn_date >= %s{scope}"
        " GROUP BY x.txn_date, x.method"
    )
    declines = (
        "SELECT t.model_id, COUNT(*), SUM(CASE WHEN x.status = 'declined' THEN 1 ELSE 0 END)"
        " FROM billing_transaction x JOIN fleet_terminal t ON t.id = x.terminal_id"
        " WHERE x.kind = 'sale' AND x.txn_date >= %s{scope} GROUP BY t.model_id"
    )
    listing = (
        "SELECT x.id, x.tid, x.occurred_at, x.kind, x.status, x.method, x.amount_fen, x.fee_fen, mer.mid"
        " FROM billing_transaction x JOIN parties_merchant mer ON mer.id = x.merchant_id"
        " ORDER BY x.occurred_at DESC, x.id DESC LIMIT 50"
    )
    return [
        {
            "page": "report: sales volume (admin)",
            "user": "admin",
            "url": "/reports/transactions/?months=12",
            "raw": [(volume.format(scope=""), [first])],
        },
        {
            "page": "report: sales volume (agent)",
            "user": "agent1",
            "url": "/reports/transactions/?months=12",
            "raw": [(volume.format(scope=mine), [first, like])],
        },
        {
            "page": "report: decline rates (agent)",
            "user": "agent1",
            "url": "/reports/declines/?months=12",
            "raw": [(declines.format(scope=mine), [first, like])],
        },
        {
            "page": "API report: sales volume (agent)",
            "user": "agent1",
            "url": "/api/v1/reports/transactions?months=12",
            "raw": [(volume.format(scope=mine), [first, like])],
        },
        {
            "page": "agent's own page",
            "user": "agent1",
            "url": f"/agents/{agent_code}/",
            "raw": [(volume.format(scope=mine), [first, like])],
        },
        {
            "page": "transaction list (admin)",
            "user": "admin",
            "url": "/transactions/",
            "raw": [(listing, [])],
        },
    ]


def _ours(client, path: str) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    response = client.get(path, headers={"accept-language": "en"})
    took = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{path}: HTTP {response.status_code}")
    return took


def _raw(connection, statements) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            cursor.fetchall()
    return time.perf_counter() - started


def phase_measure(size: int, repeat: int, only: str) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from posfleet.fleet.models import Terminal
    from posfleet.iam.models import User
    from posfleet.platform import clock
    from posfleet.testing.sessions import sign_in

    users = {u.username: u for u in User.objects.filter(username__in=("admin", "agent1"))}
    agent = users["agent1"]
    assert agent.organisation is not None
    sample = Terminal.objects.order_by("pk").values_list("sn", flat=True)[1234]
    sn_prefix = sample[:-6]  # the demo SN's model prefix and its first digits: a few dozen matches
    today = clock.today()
    clients = {}
    for name, user in users.items():
        clients[name] = sign_in(Client(), user)  # the login's own last step (second factor included)
    sn_part = sample[-6:]  # the last digits on a demo device's label (inside its copies' SNs)
    pages = _pages(agent.organisation.path, sn_prefix, sn_part, today)
    pages += _history_pages(agent.organisation.path, today)
    from posfleet.billing.models import Transaction

    if Transaction.objects.exists():
        from posfleet.parties.models import Agent

        code = Agent.objects.get(organisation=agent.organisation).code
        pages += _money_pages(agent.organisation.path, code, today)
    for page in pages:
        if only and only not in str(page["page"]):
            continue
        client = clients[str(page["user"])]
        url = str(page["url"])
        path = url if url.startswith("/api/") else "/console" + url.replace("/console", "")

        statements = page["raw"]
        _ours(client, path)
        _raw(connection, statements)  # warm-up
        mine, floor = [], []
        for _ in range(repeat):
            mine.append(_ours(client, path))
            floor.append(_raw(connection, statements))
        print(
            json.dumps(
                {
                    "phase": "measure",
                    "size": size,
                    "page": page["page"],
                    "url": path,
                    "ours_ms": [round(s * 1000, 1) for s in mine],
                    "raw_ms": [round(s * 1000, 2) for s in floor],
                }
            ),
            flush=True,
        )
    print(
        json.dumps(
            {"phase": "measure", "done": True, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
        )
    )


# -- the run -------------------------------------------------------------------------------------


def _measure(url: str, work: Path, size: int, args: argparse.Namespace) -> list[dict[str, object]]:
    import subprocess

    env = child_env(url, work)
    done = subprocess.run(
        [sys.executable, __file__, "--phase", "measure", "--size", str(size), "--repeat", str(args.repeat)]
        + (["--only", args.only] if args.only else []),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"measure {size} failed with exit code {done.returncode}")
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return [r for r in rows if "page" in r]


def bench_engine(engine, args: argparse.Namespace, work: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    template = engine.create("template")
    made = run_child(
        __file__, ["--phase", "template", "--money-days", str(args.money_days)], child_env(template, work)
    )
    print(json.dumps({**made, "engine": engine.name}), flush=True)
    results: list[dict[str, object]] = []
    for size in args.sizes:
        url = engine.create(f"size{size}", template)
        try:
            grown = run_child(
                __file__,
                ["--phase", "grow", "--size", str(size)] + (["--history"] if args.history else []),
                child_env(url, work),
            )
            print(json.dumps({**grown, "engine": engine.name}), flush=True)
            for row in _measure(url, work, size, args):
                row["engine"] = engine.name
                print(json.dumps(row), flush=True)
                results.append(row)
            if args.keep:
                url = _keep(engine, url, size, args.keep)
        finally:
            if not url.startswith("kept:"):
                engine.drop(url)
    engine.drop(template)
    return {"engine": engine.name, "rows": results}


def _keep(engine, url: str, size: int, folder: str) -> str:  # type: ignore[no-untyped-def]
    """Keep the grown database for ``--reuse``: SQLite's file moves into ``folder``, a PostgreSQL
    database is renamed ``bench_pages_kept_<size>``. Returns ``kept:<url>`` (not to be dropped)."""
    if url.startswith("sqlite:///"):
        target = Path(folder) / f"pages-{size}.sqlite3"
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.move(url.removeprefix("sqlite:///"), target)
        kept = f"sqlite:///{target}"
    else:
        name, new = url.rsplit("/", 1)[1], f"bench_pages_kept_{size}"
        engine._admin(f'DROP DATABASE IF EXISTS "{new}" WITH (FORCE)')
        engine._admin(f'ALTER DATABASE "{name}" RENAME TO "{new}"')
        engine.made.remove(name)
        kept = url.rsplit("/", 1)[0] + "/" + new
    print(json.dumps({"kept": kept, "size": size, "engine": engine.name}), flush=True)
    return f"kept:{kept}"


def reuse(args: argparse.Namespace) -> None:
    """Measure the pages again on a database kept by ``--keep`` (after a change to the code)."""
    import tempfile

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="posfleet-bench-pages-") as tmp:
        for size in args.sizes:
            rows.extend(_measure(args.reuse, Path(tmp), size, args))
    engine = "sqlite" if args.reuse.startswith("sqlite") else "postgresql"
    for row in rows:
        row["engine"] = engine
        print(json.dumps(row), flush=True)
    _table({"engine": engine, "rows": rows})


def child_main(args: argparse.Namespace) -> None:
    if args.phase == "template":
        result = phase_template(args.money_days)
    elif args.phase == "grow":
        result = phase_grow(args.size, args.history)
    else:
        phase_measure(args.size, args.repeat, args.only)
        return
    result["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


def _table(summary: dict[str, object]) -> None:
    print()
    print(f"### {summary['engine']}")
    print()
    print("| page | terminals | ours ms | raw ms | **ours / raw** |")
    print("|---|---:|---:|---:|---:|")
    for r in summary["rows"]:  # type: ignore[attr-defined]
        ours, raw = [float(x) for x in r["ours_ms"]], [float(x) for x in r["raw_ms"]]
        ratio = statistics.median(ours) / max(statistics.median(raw), 0.01)
        flag = "" if statistics.median(ours) < 1000 else " ⚠"
        print(
            f"| {r['page']} | {r['size']:,} | {spread(ours, ',.0f')}{flag} | {spread(raw, ',.1f')} "
            f"| **{ratio:,.1f}** |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default=",".join(str(s) for s in SIZES), help="fleet sizes, comma-separated"
    )
    parser.add_argument("--repeat", type=int, default=5, help="ours/raw rounds per page (after a warm-up)")
    parser.add_argument("--only", default="", help="only the pages whose name contains this")
    parser.add_argument(
        "--money-days", type=int, default=0, help="days of the demo's sales in the template (0: none)"
    )
    parser.add_argument(
        "--history", action="store_true", help="copied terminals get their originals' periods and events"
    )
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--keep", metavar="DIR", help="keep each grown database (SQLite: in DIR) for --reuse")
    parser.add_argument(
        "--reuse", metavar="URL", help="only measure, on a database kept by --keep (give --sizes its size)"
    )
    parser.add_argument("--phase", choices=["template", "grow", "measure"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        sys.path.insert(0, str(ROOT / "src"))
        child_main(args)
        return
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(s < BASE for s in args.sizes):
        raise SystemExit(f"sizes start at the demo's {BASE:,} terminals")
    if args.reuse:
        reuse(args)
        return
    for summary in each_engine("pages", args, bench_engine):
        _table(summary)


if __name__ == "__main__":
    main()
