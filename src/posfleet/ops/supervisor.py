"""A small process supervisor for the embedded tier: one command starts every process posfleet
needs (web, worker, scheduler, and the local simulators of the parties posfleet talks to), prefixes
their output, restarts none silently, and stops them all on Ctrl-C or when one of them dies — except
an ``optional`` one (a simulator): its exit is told and the others keep running."""

from __future__ import annotations

import os
import signal
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
    try:
        for i, proc in enumerate(processes):
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
        told: set[str] = set()
        while not stopping.is_set():
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
