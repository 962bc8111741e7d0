"""The gateway's poster process (docs/adr/0039): where ``gate.post`` runs when ``posfleet gateway``
gives its postings a process of their own, so that the money code's work (a dozen milliseconds of
Python per group) does not hold the interpreter lock the event loop and the look-ups need.

This module is what the child imports first: nothing of Django at module level (``init`` sets it up
from the environment the gateway was started with, as any management command does).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from posfleet.gateway.gate import Posting


def init() -> None:
    """The child's first step: Django from the parent's environment (settings, database URL), and a
    watch on the parent — a gateway killed outright (no time to stop its poster) must not leave its
    poster running: it exits within a second, its open transaction rolled back by the database."""
    import django

    django.setup()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the gateway, which stops its poster
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="poster-parent-watch", daemon=True).start()


def ready() -> bool:
    """Answered once the child is up (the gateway waits for it before it listens)."""
    return True


def post(items: list[tuple[int, Posting]]) -> list[tuple[str, int | None]]:
    """``gate.post`` for (terminal id, posting) pairs: the approval and its recording, in the child."""
    from posfleet.gateway import gate

    return gate.post(items)
