#!/usr/bin/env python3
"""API reads under load: ``GET /api/v1/terminals/{sn}`` with a bearer token, 50 concurrent clients,
against a bare Django primary-key view served by the same server process in the same run.

    python bench/api_reads.py                      # 10,000 terminals, SQLite, 3 rounds of 10 s (~3 min)
    python bench/api_reads.py --postgres           # also PostgreSQL at 127.0.0.1:5432
    python bench/api_reads.py --user agent1        # an agent's token (sees its own terminals only)
    python bench/api_reads.py --scope read         # a read-only token (no allowed_actions computed)
    python bench/api_reads.py --conn-max-age 60    # the server keeps its SQLite connections (a proposal)
    python bench/api_reads.py --duration 5 --repeat 1   # a quick look
    python bench/api_reads.py --src /path/to/src   # measure another source tree

What it does:

- setup (a child process): migrates a fresh database (SQLite file in a scratch folder, or a scratch
  PostgreSQL database dropped at the end) and builds the demo fleet through the real services
  (``posfleet demo --terminals N --money-days 0``: agents, merchants, terminals in every state with
  their audited history); then one API token for the user (``admin`` by default, scope ``write``) and
  the list of terminals that user may see (their SNs and primary keys), shuffled.
- server: ``posfleet serve`` — the command ``make run`` starts (gunicorn, gthread, 2 workers × 4
  threads, access log) — on a free loopback port, with make run's settings (``config.settings.dev``)
  plus the bench-only URLconf ``api_reads_urls`` (settings ``api_reads_settings``). One server for
  the whole run.
- load (a child process per phase): an asyncio HTTP/1.1 client, N keep-alive connections on loopback,
  each sending its next request as soon as the answer is read, for D seconds. Every answer must be
  2xx with the terminal in its body; latencies per request, the client's own CPU time, and the
  server's CPU time (its worker processes, from /proc) per request.
- phases, alternating after a warm-up round:
  - **ours** — ``GET /api/v1/terminals/{sn}``, ``Authorization: Bearer pf_…``: the whole app
    (middleware, ninja, token auth, visibility, the terminal with its model/merchant/agent/store,
    the allowed actions of a ``write`` token, the schema, JSON).
  - **bare** — ``GET /bench/bare/{pk}``: ``Terminal.objects.filter(pk=pk).values(…).first()`` as a
    ``JsonResponse``, answered by the first middleware (no other middleware, no auth, no ninja): the
    floor of a Django view reading one row on this server and database.
  - **bare+mw** — the same bare view through the app's whole middleware stack.

Output: one JSON line per phase, then a Markdown table (req/s, p50/p95/p99 ms, ratios ours/bare and
ours/bare+mw, non-2xx). Goals: ours ≥ 0.4 × bare, p95 < 300 ms, 0 non-2xx.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from harness import child_env, each_engine, spread  # noqa: E402

TODAY = "2026-12-06"
PHASES = ("ours", "bare", "bare+mw")


def env_for(db_url: str, work: Path, src: Path | None, settings: str | None = None) -> dict[str, str]:
    env = child_env(db_url, work)
    paths = [str(BENCH)] + ([str(src)] if src else [])
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if settings:
        env["DJANGO_SETTINGS_MODULE"] = settings
    return env


def run_phase(args: list[str], env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"phase {args[:2]} failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- setup (child) ------------------------------------------------------------------------------


def phase_setup(terminals: int, user: str, scope: str, targets_file: Path) -> dict[str, object]:
    import django

    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0, skip_checks=True)
    with open(os.devnull, "w") as quiet:
        today = date.fromisoformat(TODAY)
        call_command("demo", terminals=terminals, money_days=0, today=today, stdout=quiet, skip_checks=True)
    from django.db import connection

    from posfleet.fleet.selectors import terminals_visible_to
    from posfleet.iam.models import ApiToken, User, hash_token
    from posfleet.iam.services import TOKEN_PREFIX

    who = User.objects.get(username=user)
    raw = TOKEN_PREFIX + "bench-" + os.urandom(16).hex()
    ApiToken.objects.create(user=who, name="bench", prefix=raw[:10], digest=hash_token(raw), scope=scope)
    targets = list(terminals_visible_to(who).values_list("sn", "pk"))
    random.Random(7).shuffle(targets)
    targets_file.write_text(json.dumps({"token": raw, "targets": targets}))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE" if connection.vendor == "postgresql" else "PRAGMA optimize")
    return {
        "terminals": terminals,
        "visible": len(targets),
        "user": user,
        "role": who.role,
        "scope": scope,
        "setup_seconds": round(time.perf_counter() - started, 1),
    }


# -- load (child) -------------------------------------------------------------------------------


async def _client(
    port: int,
    requests: list[bytes],
    start: int,
    deadline: float,
    out: list[tuple[float, int, bool]],
    errors: list[str],
    marker: bytes,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = start
    n = len(requests)
    try:
        while time.perf_counter() < deadline:
            request = requests[i % n]
            i += 1
            sent = time.perf_counter()
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length, chunked, close = -1, False, False
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"transfer-encoding" and b"chunked" in value.lower():
                        chunked = True
                    elif name == b"connection" and b"close" in value.lower():
                        close = True
                if chunked:
                    body = b""
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                        body += await reader.readexactly(size + 2)
                        if size == 0:
                            break
                else:
                    body = await reader.readexactly(length) if length >= 0 else await reader.read()
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                errors.append(type(exc).__name__)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            out.append((time.perf_counter() - sent, status, marker in body))
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


def server_cpu(master: int) -> float:
    """CPU seconds (user + system) of the server's worker processes so far."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master or int(entry.name) == master:  # ppid is field 4 (index 1 here)
            total += int(fields[11]) + int(fields[12])
    return total / tick


def phase_load(args: argparse.Namespace) -> dict[str, object]:
    data = json.loads(Path(args.targets).read_text())
    host = f"127.0.0.1:{args.port}"
    if args.target == "ours":
        auth = f"Authorization: Bearer {data['token']}\r\n"
        requests = [
            f"GET /api/v1/terminals/{sn} HTTP/1.1\r\nHost: {host}\r\n{auth}Accept: application/json\r\n\r\n"
            for sn, _pk in data["targets"]
        ]
        marker = b'"sn":'
    else:
        prefix = "/bench/bare/" if args.target == "bare" else "/bench/bare-mw/"
        requests = [
            f"GET {prefix}{pk} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n"
            for _sn, pk in data["targets"]
        ]
        marker = b'"sn":'
    encoded = [r.encode() for r in requests]
    out: list[tuple[float, int, bool]] = []
    errors: list[str] = []

    async def main() -> float:
        start = time.perf_counter()
        deadline = start + args.duration
        step = max(1, len(encoded) // args.clients)
        await asyncio.gather(
            *(
                _client(args.port, encoded, c * step, deadline, out, errors, marker)
                for c in range(args.clients)
            )
        )
        return time.perf_counter() - start

    cpu_before = server_cpu(args.server_pid)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = asyncio.run(main())
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_after = server_cpu(args.server_pid)
    latencies = sorted(lat for lat, _s, _ok in out)
    count = len(out)

    def pct(p: float) -> float:
        return latencies[min(count - 1, int(p * count))] * 1000 if count else 0.0

    return {
        "requests": count,
        "seconds": round(elapsed, 3),
        "rps": count / elapsed,
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] * 1000 if count else 0.0,
        "mean_ms": statistics.fmean(latencies) * 1000 if count else 0.0,
        "non_2xx": sum(1 for _lat, s, _ok in out if not 200 <= s < 300),
        "statuses": sorted({s for _lat, s, _ok in out}),
        "bad_bodies": sum(1 for _lat, s, ok in out if 200 <= s < 300 and not ok),
        "errors": len(errors),
        "server_cpu_ms_per_req": (cpu_after - cpu_before) * 1000 / count if count else 0.0,
        "client_cpu_s": round(
            usage_after.ru_utime + usage_after.ru_stime - usage.ru_utime - usage.ru_stime, 2
        ),
    }


# -- the run ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "posfleet", "serve", "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,  # the access log: written as in make run, read by nobody
        stderr=log.open("wb"),
        start_new_session=True,
    )
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}; see {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not answer /healthz within 30 s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)  # gunicorn's master stops its workers
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def bench_engine(engine, args: argparse.Namespace, work: Path) -> dict[str, object]:
    db = engine.create("fleet")
    targets = work / f"targets-{engine.name}.json"
    setup = run_phase(
        [
            "--phase",
            "setup",
            "--terminals",
            str(args.terminals),
            "--user",
            args.user,
            "--scope",
            args.scope,
            "--targets",
            str(targets),
        ],
        env_for(db, work, args.src),
    )
    print(json.dumps({**setup, "engine": engine.name}), flush=True)
    port = free_port()
    server_env = env_for(db, work, args.src, "api_reads_settings")
    if args.conn_max_age is not None:
        server_env["BENCH_CONN_MAX_AGE"] = str(args.conn_max_age)
    server = start_server(port, server_env, work / "server.log")
    results: dict[str, list[dict[str, object]]] = {p: [] for p in PHASES}
    try:
        for n in range(args.repeat + 1):  # the first round warms up and is not counted
            for phase in PHASES:
                result = run_phase(
                    [
                        "--phase",
                        "load",
                        "--target",
                        phase,
                        "--port",
                        str(port),
                        "--server-pid",
                        str(server.pid),
                        "--clients",
                        str(args.clients),
                        "--duration",
                        str(args.duration if n else min(args.duration, 5.0)),
                        "--targets",
                        str(targets),
                    ],
                    env_for(db, work, args.src),
                )
                result.update(
                    engine=engine.name,
                    phase=phase,
                    round=n,
                    warm_up=n == 0,
                    load=round(os.getloadavg()[0], 2),
                )
                print(json.dumps(result), flush=True)
                if n:
                    results[phase].append(result)
    finally:
        stop_server(server)
        engine.drop(db)
    ours, bare, bare_mw = (results[p] for p in PHASES)
    return {
        "engine": engine.name,
        "load": spread([float(r["load"]) for p in PHASES for r in results[p]], ".1f"),
        "setup": setup,
        "rows": {p: results[p] for p in PHASES},
        "ratio_bare": spread(
            [float(o["rps"]) / float(b["rps"]) for o, b in zip(ours, bare, strict=True)], ".2f"
        ),
        "ratio_mw": spread(
            [float(o["rps"]) / float(b["rps"]) for o, b in zip(ours, bare_mw, strict=True)], ".2f"
        ),
        # The server's CPU per request, bare over ours: the same ratio as req/s when the server has the
        # machine to itself, and less disturbed by whatever else runs on it.
        "ratio_cpu": spread(
            [
                float(b["server_cpu_ms_per_req"]) / float(o["server_cpu_ms_per_req"])
                for o, b in zip(ours, bare, strict=True)
            ],
            ".2f",
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--terminals", type=int, default=10_000, help="size of the demo fleet")
    parser.add_argument("--clients", type=int, default=50, help="concurrent keep-alive connections")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the three phases after a warm-up")
    parser.add_argument("--user", default="admin", help="whose token (a demo login)")
    parser.add_argument("--scope", default="write", choices=["read", "write"], help="the token's scope")
    parser.add_argument(
        "--conn-max-age",
        type=int,
        help="the server keeps its database connections this many seconds (a proposal: the app's "
        "SQLite setting is 0, a new connection per request; PostgreSQL's is 60)",
    )
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--src", type=Path, help="source tree to measure (default: the installed posfleet)")
    parser.add_argument("--phase", choices=["setup", "load"], help=argparse.SUPPRESS)
    parser.add_argument("--target", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--targets", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "setup":
        result = phase_setup(args.terminals, args.user, args.scope, Path(args.targets))
        result["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(result))
        return
    if args.phase == "load":
        print(json.dumps(phase_load(args)))
        return
    summaries = each_engine("api", args, bench_engine)
    print()
    print(
        f"{args.clients} clients, {args.duration:g} s per phase, {args.repeat} rounds; "
        "medians [range] of the rounds"
    )
    for s in summaries:
        print(f"{s['engine']}: 1-minute load average as the phases started {s['load']} (2 cores)")
    print()
    print(
        "| engine | token | phase | req/s | p50 ms | p95 ms | p99 ms | server CPU ms/req | non-2xx "
        "| **ours / bare** | ours / bare+mw | CPU/req bare / ours |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in summaries:
        setup = s["setup"]
        token = f"{setup['user']} ({setup['scope']})"
        if args.conn_max_age is not None:
            token += f", CONN_MAX_AGE={args.conn_max_age}"
        for phase in PHASES:
            rows = s["rows"][phase]

            def col(key: str, fmt: str = ",.0f", rows: list[dict[str, object]] = rows) -> str:
                return spread([float(r[key]) for r in rows], fmt)

            ratios = (
                f"**{s['ratio_bare']}** | {s['ratio_mw']} | {s['ratio_cpu']}" if phase == "ours" else " | | "
            )
            print(
                f"| {s['engine']} | {token} | {phase} | {col('rps')} | {col('p50_ms', ',.1f')} "
                f"| {col('p95_ms', ',.1f')} | {col('p99_ms', ',.1f')} "
                f"| {col('server_cpu_ms_per_req', '.2f')} "
                f"| {sum(int(r['non_2xx']) + int(r['errors']) + int(r['bad_bodies']) for r in rows)} "
                f"| {ratios} |"
            )


if __name__ == "__main__":
    main()
