"""A small process supervisor for the embedded tier: one command starts every process posfleet
needs (web, worker, scheduler, and the local simulators of the parties posfleet talks to), prefixes
their output, restarts none silently, and stops them all on Ctrl-C or when one of them dies — except
an ``optional`` one (a simulator): its exit is told and the others keep running. A process can wait
for addresses to answer before it starts (``after``: the terminal simulator waits for the gateway and
the issuer, so its first sales are not declined for an issuer still starting)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class Process:
    name: str
    argv: Sequence[str]
    optional: bool = False  # its exit is told, and the others keep running
    after: tuple[tuple[str, int], ...] = ()  # started once each of these (host, port) accepts


COLOURS = ["36", "35", "33", "32", "34"]


def _pump(name: str, colour: str, stream: TextIO, out: TextIO, lock: threading.Lock) -> None:
    prefix = f"\033[{colour}m{name:>9}\033[0m | " if out.isatty() else f"{name:>9} | "
    for line in iter(stream.readline, ""):
        with lock:
            out.write(prefix + line)
            out.flush()


def supervise(processes: Sequence[Process], *, out: TextIO = sys.stdout, grace: float = 10.0) -> int:
    """Run ``processes`` until Ctrl-C/SIGTERM or until one exits; then stop the rest. Returns an exit code."""
    lock = threading.Lock()
    children: list[tuple[Process, subprocess.Popen[str]]] = []
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0

    def start(i: int, proc: Process) -> None:
        child = subprocess.Popen(  # noqa: S603 (our own commands)
            list(proc.argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        children.append((proc, child))
        assert child.stdout is not None
        threading.Thread(
            target=_pump,
            args=(proc.name, COLOURS[i % len(COLOURS)], child.stdout, out, lock),
            daemon=True,
        ).start()

    waiting: list[tuple[int, Process]] = []
    try:
        for i, proc in enumerate(processes):
            if proc.after and not _answering(proc.after):
                waiting.append((i, proc))
                where = ", ".join(f"{host}:{port}" for host, port in proc.after)
                with lock:
                    out.write(f"{proc.name} starts once {where} answer\n")
                continue
            start(i, proc)
        told: set[str] = set()
        while not stopping.is_set():
            for i, proc in list(waiting):
                if _answering(proc.after):
                    waiting.remove((i, proc))
                    start(i, proc)
            for proc, child in children:
                if child.poll() is None or proc.name in told:
                    continue
                if proc.optional:
                    told.add(proc.name)
                    with lock:
                        out.write(
                            f"{proc.name} exited with code {child.returncode}; the others keep running\n"
                        )
                    continue
                with lock:
                    out.write(f"{proc.name} exited with code {child.returncode}; stopping everything\n")
                code = child.returncode or 1
                stopping.set()
                break
            time.sleep(0.2)
    finally:
        for _proc, child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _proc, child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _answering(addresses: Sequence[tuple[str, int]]) -> bool:
    """Whether every address accepts a TCP connection now (the connection is closed at once)."""
    for host, port in addresses:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                pass
        except OSError:
            return False
    return True
