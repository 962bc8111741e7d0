"""Writing the demo fleet: rows in bulk, history as audit entries in time order.

Nothing here calls the per-terminal services (50,000 calls would take minutes); instead the rows are
written with ``bulk_create`` in the state the services would have left them in, and the history is
appended with ``audit.services.record_many`` — the same event types, reasons and before/after
snapshots the services write, in time order, so ``posfleet audit verify`` and the terminal timeline
work on demo data. ``build.py`` appends the entries to the chain, between the money the services
write at their moments (``money/``), all in one transaction: a failure leaves the database empty.

``state.py``   what the parts share: the demo's actor, the plan, the story's days, rows written so far
``rows.py``    the rows: organisations, agents, merchants, stores, users, terminals, status periods
``replay.py``  one terminal replayed through its history, as fleet.services would change it
``history.py`` every event placed on its day and in its actor's slot, built into audit entries
"""

from __future__ import annotations

from posfleet.demo.fleet.history import Extra, History
from posfleet.demo.fleet.rows import Rows
from posfleet.demo.fleet.state import MONEY, SYSTEM


class _Demo(Rows, History):
    """The demo fleet being written: its rows (``Rows``) and its history (``History``)."""


__all__ = ["MONEY", "SYSTEM", "Extra", "_Demo"]
