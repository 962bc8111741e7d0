"""The fleet's row locks on terminals: every service that changes a terminal takes them here."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import QuerySet

from posfleet.fleet.models import Terminal
from posfleet.platform.context import Actor
from posfleet.platform.errors import NotFound
from posfleet.platform.prepared import Prepared


def terminals_lock(actor: Actor, sns: Sequence[str]) -> dict[str, Terminal]:
    """Lock (``SELECT … FOR UPDATE``, in id order, so two callers never wait on each other in a
    circle) the terminals of ``sns`` that ``actor`` may see, by SN; others' terminals are left out as
    if they did not exist. The fleet's one row lock: its own services and other contexts' (a renewal,
    a replacement) that change a terminal in the same transaction take it here."""
    wanted = [sn.strip().upper()[:32] for sn in sns]
    rows = (
        Terminal.objects.select_for_update(of=("self",))
        .select_related(
            "model", "agent", "agent__organisation", "merchant", "merchant__organisation", "store"
        )
        .filter(sn__in=wanted)
        .order_by(*(["pk"] if len(wanted) > 1 else []))  # one row: no order to compile
    )
    return {t.sn: t for t in rows if actor.may("fleet.view_terminal", t)}


def terminal_lock(actor: Actor, sn: str) -> Terminal:
    """``terminals_lock`` of one terminal; NotFound (404) when it is not there for ``actor``."""
    terminal = terminals_lock(actor, [sn]).get(sn.strip().upper()[:32])
    if terminal is None:
        raise NotFound()
    return terminal


def statuses_for_approval(terminal_ids: Sequence[int]) -> dict[int, str]:
    """The terminals' committed status, read under their row locks (in id order, inside the caller's
    transaction): the gateway approves a sale only in the transaction that read ``active`` here. A
    status change holds the same lock (``terminals_lock``), so it is strictly before or after the
    approval. SQLite serialises writers already (IMMEDIATE transactions); the locks are PostgreSQL's."""
    if not connection.in_atomic_block:
        raise RuntimeError("statuses_for_approval() is read inside the approving transaction")
    return dict(_STATUSES_LOCKED.rows(ids=list(terminal_ids)))


def _statuses_locked(ids: list[int]) -> QuerySet[Terminal, tuple[int, str]]:
    query = Terminal.objects.filter(pk__in=ids).order_by("pk")
    if connection.vendor == "postgresql":
        query = query.select_for_update()
    return query.values_list("pk", "status")


# Taken for every group of the gateway's approvals: compiled once per connection and list length.
_STATUSES_LOCKED = Prepared(_statuses_locked, ids=[int])
