"""``heap.settle``: what start-up made is frozen out of the collector's sight, and the collector still
frees the cycles a process makes afterwards (ADR 0043). Run in a fresh interpreter with Django set
up, as the gateway, its poster and the simulators run it: freezing the test process itself would keep
its objects for the rest of the session."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = """
import gc, json, weakref
import django
django.setup()
from posfleet.gateway import server  # what the gateway imports before it settles
from posfleet.platform import heap

tracked_before = len(gc.get_objects())
frozen = heap.settle()
tracked_after = len(gc.get_objects())

class Node:
    pass

first, second = Node(), Node()
first.other, second.other = second, first  # a cycle: freed by the collector only
gone = weakref.ref(first)
del first, second
gc.collect()
print(json.dumps({
    "before": tracked_before, "frozen": frozen, "after": tracked_after,
    "cycle_freed": gone() is None, "enabled": gc.isenabled(),
}))
"""


def test_start_up_is_frozen_and_a_later_cycle_is_still_freed() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "posfleet.config.settings.dev"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # The objects start-up left are frozen: a full collection no longer looks at them.
    assert seen["frozen"] >= 0.9 * seen["before"] > 10_000
    assert seen["after"] < 0.01 * seen["before"]
    # The collector still runs, and still frees what the process makes afterwards.
    assert seen["enabled"]
    assert seen["cycle_freed"]
