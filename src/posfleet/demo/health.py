"""Device health in the demo: a few smart terminals whose last heartbeat reported a position far from
their store, so the console's relocation alerts (移机告警) have something to review.

Each is a call of the real heartbeat service (``fleet.services.terminal_heartbeat``) at the moment of
the terminal's last heartbeat, on the simulated clock: it writes the alert, its audit row and its
outbox event as a device or the gateway would. Which terminals, and where they went, follow from the
plan alone (the first suitable ones, in SN order), so two builds with the same options agree.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any

from posfleet.demo import vocabulary as V
from posfleet.demo.money.timeline import Op
from posfleet.demo.plan import StorePlan, TerminalPlan
from posfleet.fleet.models import Terminal
from posfleet.fleet.services import terminal_heartbeat
from posfleet.fleet.states import Status

# Where the chosen terminals turned up: another city, another city, across town (about 6 km).
MOVES = ("city", "city", "town")
RECENT_MINUTES = 24 * 60  # only terminals heard of in the last day of the story


def _far_place(store: StorePlan, move: str, n: int) -> dict[str, float]:
    assert store.latitude is not None
    assert store.longitude is not None
    if move == "town":
        return {
            "lat": round(float(store.latitude) + 0.055, 6),
            "lon": float(store.longitude),
            "accuracy_m": 12.0,
        }
    cities = [c for c in V.CITY_CENTRES if c != store.city]
    lat, lon = V.CITY_CENTRES[cities[(n * 5) % len(cities)]]
    return {"lat": round(lat + 0.0123, 6), "lon": round(lon - 0.0087, 6), "accuracy_m": 8.0}


def _beat(sn: str, at: Any, place: dict[str, float], source: str) -> Callable[[], Any]:
    def run() -> Any:
        terminal = Terminal.objects.select_related("store").get(sn=sn)
        return terminal_heartbeat(terminal=terminal, at=at, location=place, source=source)

    return run


def relocation_ops(demo: Any, *, exclude: Collection[int] = ()) -> list[Op]:
    """The heartbeats that raise the demo's relocation alerts, as ops of the story (``demo``: the fleet
    being written; ``exclude``: terminal indexes other parts of the story use, e.g. closure cases)."""
    ops: list[Op] = []
    cities: set[str] = set()
    for replay in sorted(demo.replays, key=lambda r: r.plan.sn):
        plan: TerminalPlan = replay.plan
        if len(ops) == len(MOVES):
            break
        if (
            plan.index in exclude
            or replay.status != Status.ACTIVE
            or replay.store is None
            or plan.merchant is None
            or plan.store is None
            or plan.heartbeat_minutes is None
            or plan.heartbeat_minutes > RECENT_MINUTES
            or V.TERMINAL_MODELS[plan.model][3] != "smart"
        ):
            continue
        store = demo.plan.merchants[plan.merchant].stores[plan.store]
        if store.latitude is None or store.city in cities:
            continue
        cities.add(store.city)
        n = len(ops)
        at = demo.midnight - timedelta(minutes=plan.heartbeat_minutes)
        source = "gateway" if n % 2 else "device_channel"
        place = _far_place(store, MOVES[n], n)
        ops.append(Op(at, 6, f"relocation {plan.sn}", _beat(plan.sn, at, place, source)))
    return ops
