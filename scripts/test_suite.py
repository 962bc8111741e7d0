#!/usr/bin/env python3
"""`make test`: the whole suite on SQLite and on PostgreSQL, browser tests included. Two lanes go side by
side (a core each on CI's two): SQLite, then PostgreSQL's fuzzing; and the rest of PostgreSQL. Each run's
output is printed whole when it ends. ``--one-after-the-other`` runs SQLite, then PostgreSQL.

Before running it makes sure what the tests need is there, and says so plainly when it is not:
- Debian's chromium for the browser tests (installed with apt-get when we are root and it is missing);
- a PostgreSQL server: the one at POSFLEET_TEST_DATABASE_URL (default postgres@127.0.0.1:5432), or,
  when none answers, a throwaway cluster started here (initdb as the postgres user into a temporary
  folder, on a free loopback port) and stopped afterwards;
- a Redis server for the scale tier's tests (a real Celery worker): the one at POSFLEET_TEST_REDIS_URL
  (default 127.0.0.1:6379), or, when none answers, a throwaway redis-server on a free loopback port
  with its files in a temporary folder, stopped afterwards. Both runs get POSFLEET_TEST_REDIS_URL.
A test never skips because a service is missing: it is started, or this script fails saying why.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379"
APT_TEST_PACKAGES = ["chromium", "fonts-noto-cjk", "gettext", "libharfbuzz-subset0"]


def say(message: str) -> None:
    print(f"[make test] {message}", flush=True)


def apt_install(packages: list[str]) -> bool:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    say(f"installing Debian packages: {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    return (
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=False, env=env).returncode == 0
    )


def ensure_chromium() -> None:
    if shutil.which("chromium"):
        return
    if not apt_install(APT_TEST_PACKAGES) or not shutil.which("chromium"):
        sys.exit("[make test] the browser tests need Debian's chromium: run `sudo apt-get install chromium`")


def pg_answers(url: str) -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    initdb = find_pg_bin("initdb")
    if initdb is None:
        apt_install(["postgresql"])
        initdb = find_pg_bin("initdb")
    if initdb is None:
        sys.exit("[make test] no PostgreSQL answers and none can be started: install Debian's postgresql")
    pg_ctl = str(Path(initdb).with_name("pg_ctl"))
    folder = Path(tempfile.mkdtemp(prefix="posfleet-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(folder, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    port = free_port()
    say(f"starting a throwaway PostgreSQL on 127.0.0.1:{port}")
    subprocess.run(
        [*as_postgres, initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c synchronous_commit=off"
    subprocess.run(
        [*as_postgres, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_postgres, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    url = os.environ.get("POSFLEET_TEST_DATABASE_URL", DEFAULT_PG)
    if pg_answers(url):
        yield url
        return
    say(f"no PostgreSQL answers at {url.split('@')[-1]}")
    with throwaway_postgres() as started:
        yield started


def redis_answers(url: str) -> bool:
    try:
        import redis
    except ImportError:
        return False
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def throwaway_redis() -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        apt_install(["redis-server"])
        server = shutil.which("redis-server")
    if server is None:
        sys.exit("[make test] no Redis answers and none can be started: install Debian's redis-server")
    folder = Path(tempfile.mkdtemp(prefix="posfleet-redis-"))
    port = free_port()
    url = f"redis://127.0.0.1:{port}"
    say(f"starting a throwaway Redis on 127.0.0.1:{port}")
    log = (folder / "log").open("wb")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--logfile", ""],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not redis_answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                sys.exit(
                    "[make test] the throwaway redis-server did not start:\n"
                    + (folder / "log").read_text(errors="replace")[-2000:]
                )
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    url = os.environ.get("POSFLEET_TEST_REDIS_URL") or DEFAULT_REDIS
    if redis_answers(url):
        yield url
        return
    say(f"no Redis answers at {url.split('@')[-1]}")
    with throwaway_redis() as started:
        yield started


# Tests that do not depend on the database engine run once (pyproject's markers): the browser and
# the PDFs on SQLite, the fuzzing on PostgreSQL, whose text and length rules are the stricter.
ONLY_ON = {"sqlite": "not fuzz", "postgres": "not e2e and not pdf"}


def pytest_command(database: str, extra: list[str]) -> list[str]:
    chosen = any(arg == "-m" or arg.startswith("-m") for arg in extra)  # the caller picks the marks
    marks = [] if chosen else ["-m", ONLY_ON[database]]
    return [sys.executable, "-m", "pytest", *marks, *extra]


def run_pytest(database: str, extra: list[str], env: dict[str, str]) -> int:
    say(f"running the suite on {database}")
    started = time.monotonic()
    env = {**env, "POSFLEET_TEST_DB": database}
    code = subprocess.call(pytest_command(database, extra), cwd=ROOT, env=env)
    say(f"{database}: {'passed' if code == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return code


# Side by side, in two lanes that take about as long each: SQLite then PostgreSQL's fuzzing, and the
# rest of PostgreSQL. (name, database, marks)
LANES = [
    [("sqlite", "sqlite", ONLY_ON["sqlite"]), ("postgres fuzzing", "postgres", "fuzz")],
    [("postgres", "postgres", "not e2e and not pdf and not fuzz")],
]


def run_side_by_side(extra: list[str], envs: dict[str, dict[str, str]]) -> dict[str, int]:
    """The lanes at once (a core each on a two-core machine), each run writing to its own log; a run's
    log is printed whole when it ends, so their lines never interleave."""
    folder = Path(tempfile.mkdtemp(prefix="posfleet-test-logs-"))
    chosen = any(arg == "-m" or arg.startswith("-m") for arg in extra)
    lanes = [list(lane) for lane in LANES]
    if chosen:  # the caller picks the marks: one run per database
        lanes = [[("sqlite", "sqlite", "")], [("postgres", "postgres", "")]]
    running: dict[str, tuple[subprocess.Popen[bytes], Path, float, list[tuple[str, str, str]]]] = {}

    def start(lane: list[tuple[str, str, str]]) -> None:
        name, database, marks = lane.pop(0)
        log = folder / f"{name.replace(' ', '-')}.log"
        say(f"running {name} (its output follows when it ends)")
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "pytest", *(["-m", marks] if marks else []), *extra],
                cwd=ROOT,
                env={**envs[database], "POSFLEET_TEST_DB": database},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        running[name] = (process, log, time.monotonic(), lane)

    for lane in lanes:
        start(lane)
    results: dict[str, int] = {}
    try:
        while running:
            for name, (process, log, started, lane) in list(running.items()):
                code = process.poll()
                if code is None:
                    continue
                del running[name]
                sys.stdout.write(log.read_text(errors="replace"))
                sys.stdout.flush()
                verdict = "passed" if code == 0 else "FAILED"
                say(f"{name}: {verdict} in {time.monotonic() - started:.0f} s")
                results[name] = code
                if lane:
                    start(lane)
            time.sleep(0.5)
    finally:
        for process, _log, _started, _lane in running.values():
            process.terminate()
    shutil.rmtree(folder, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["sqlite", "postgres"], help="run on one database only")
    parser.add_argument(
        "--one-after-the-other",
        dest="side_by_side",
        action="store_false",
        help="run SQLite, then PostgreSQL (default: two lanes at once, each run printed when it ends)",
    )
    args, extra = parser.parse_known_args()
    ensure_chromium()
    results: dict[str, int] = {}
    with redis_server() as redis_url:
        env = {**os.environ, "POSFLEET_TEST_REDIS_URL": redis_url}
        if args.only == "sqlite":
            results["sqlite"] = run_pytest("sqlite", extra, env)
        else:
            with postgres() as pg_url:
                pg_env = {**env, "POSFLEET_TEST_DATABASE_URL": pg_url}
                if args.only == "postgres":
                    results["postgres"] = run_pytest("postgres", extra, pg_env)
                elif args.side_by_side:
                    results = run_side_by_side(extra, {"sqlite": env, "postgres": pg_env})
                else:
                    results["sqlite"] = run_pytest("sqlite", extra, env)
                    results["postgres"] = run_pytest("postgres", extra, pg_env)
    failed = [db for db, code in results.items() if code != 0]
    say("all passed" if not failed else f"failed on: {', '.join(failed)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
