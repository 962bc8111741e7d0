"""Where the gateway's groups of approvals are written (``gate.post``): a process of its own (ADR 0039)
or, in-process, a thread.

``ProcessPoster`` spawns a child that sets Django up from the environment the gateway was started with
and writes each group it is sent; the parent talks to it over a pipe that the event loop itself reads
(``add_reader``). No helper thread stands between them (ADR 0041): a ``ProcessPoolExecutor`` passed each
group through two threads of the gateway's process, and each of them had to win the interpreter lock
from the event loop and the reader threads — about 13 ms a group at full load, 3 ms at 200 sales a
second.

``ThreadPoster`` runs ``gate.post`` in one thread of the gateway (the tests' in-process servers: a
spawned child would not see a test's database).

This module is what the child imports first: nothing of Django at module level (``_child`` sets it up,
as any management command does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from posfleet.gateway.gate import Posting

Items = list[tuple[int, "Posting"]]
Answers = list[tuple[str, int | None]]
log = logging.getLogger("posfleet.gateway")


class PosterDied(Exception):
    """The poster process ended (killed, out of memory) while it had a group: that group's one
    transaction committed just before, or not — the caller reads back which."""


class PosterFailed(Exception):
    """``gate.post`` raised in the poster process (logged there, with its traceback): the group was
    not recorded, its transaction rolled back."""


class Poster(Protocol):
    async def ready(self) -> None: ...

    async def post(self, items: Items) -> Answers: ...

    def close(self) -> None: ...


class ThreadPoster:
    """``gate.post`` in a thread of the gateway, through ``run`` (the gateway's ``_db``: it keeps track
    of the thread's database connection)."""

    def __init__(self, run: Callable[..., Awaitable[Any]]) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-post")
        self._run = run

    async def ready(self) -> None:
        return None

    async def post(self, items: Items) -> Answers:
        from posfleet.gateway import gate

        answers: Answers = await self._run(gate.post, items, pool=self.pool)
        return answers

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class ProcessPoster:
    """A spawned child (not forked: it opens its own database connection) writing one group at a
    time. ``post`` is called by one task at a time (the gateway's poster loop)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self.process = context.Process(target=_child, args=(theirs,), name="gateway-poster", daemon=True)
        self.process.start()
        theirs.close()
        self._waiting: asyncio.Future[Any] | None = None
        self._reading = False
        self._up: asyncio.Future[Any] | None = None
        self.dead = False

    def _expect(self) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        if not self._reading:
            loop.add_reader(self._conn.fileno(), self._readable, loop)
            self._reading = True
        self._waiting = loop.create_future()
        return self._waiting

    def _readable(self, loop: asyncio.AbstractEventLoop) -> None:
        waiting, self._waiting = self._waiting, None
        try:
            message = self._conn.recv()  # the child sends each answer whole
        except (EOFError, OSError):
            self._died(loop)
            if waiting is not None and not waiting.done():
                waiting.set_exception(PosterDied("the poster process ended"))
            return
        if waiting is not None and not waiting.done():
            waiting.set_result(message)

    def _died(self, loop: asyncio.AbstractEventLoop) -> None:
        self.dead = True
        if self._reading:
            loop.remove_reader(self._conn.fileno())
            self._reading = False

    async def ready(self) -> None:
        """Wait until the child has set Django up (the gateway waits before it listens)."""
        if self._up is None:
            self._up = self._expect()
        await asyncio.shield(self._up)

    async def post(self, items: Items) -> Answers:
        await self.ready()
        if self.dead:
            raise PosterDied("the poster process ended")
        answer = self._expect()
        try:
            self._conn.send(items)
        except OSError as exc:  # the child is gone (its end of the pipe closed)
            self._died(asyncio.get_running_loop())
            raise PosterDied("the poster process ended") from exc
        kind, value = await answer
        if kind == "error":
            raise PosterFailed(value)
        answers: Answers = value
        return answers

    def close(self, timeout: float = 10.0) -> None:
        """Ask the child to stop (it finishes the group it has), wait for it, kill it if it does not."""
        if self.process.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send(None)
            self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self._conn.close()


def _child(conn: Connection) -> None:
    """The poster process: Django from the parent's environment (settings, database URL), a watch on
    the parent — a gateway killed outright (no time to stop its poster) must not leave its poster
    running: it exits within a second, its open transaction rolled back by the database — then one
    group at a time until told to stop or the parent's end closes."""
    import django

    django.setup()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the gateway, which stops its poster
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="poster-parent-watch", daemon=True).start()
    from django.db import connection

    from posfleet.gateway import gate
    from posfleet.platform import heap

    heap.settle()  # start-up's objects out of the collector's full collections (ADR 0043)
    conn.send(("ready", None))
    try:
        while True:
            try:
                items = conn.recv()
            except EOFError:
                return
            if items is None:
                return
            try:
                answer: tuple[str, Any] = ("ok", gate.post(items))
            except Exception as exc:
                log.exception("gateway poster: a group of %d failed", len(items))
                connection.close()  # a broken connection is not reused by the next group
                answer = ("error", type(exc).__name__)  # no values: the log above has the details
            conn.send(answer)
    finally:
        connection.close()
