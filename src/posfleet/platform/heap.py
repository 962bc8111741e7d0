"""The collector's pauses in the long-running processes that answer terminals (ADR 0043).

CPython's cyclic collector runs a full collection now and then, and a full collection looks at every
object the process holds. A process with Django set up and the gateway imported holds 100,000–170,000
of them — the apps, the models, the URL patterns, the translations — made at start-up and kept for its
life. In the gateway and its poster each full collection stopped everything for 70–126 ms, about
once every ten seconds at 200 sales a second: the answers waiting then were late by that much, the
p99 that QUALITY.md and issue 13 bound at 50 ms.

``settle`` is called once a process has started, before it takes work: it collects what start-up left
as garbage, then freezes the rest (``gc.freeze``). The frozen objects are never looked at again; the
collector still runs, on what the process makes afterwards, so a cycle made while answering is still
freed. A frozen object left in a cycle is never freed; start-up's objects live as long as the process
anyway.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect, then freeze what is left; returns how many objects are frozen (for a log line)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
