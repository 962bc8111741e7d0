"""Reading the fleet, always through the user's scope: others' terminals are simply not there."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum

from posfleet.fleet.models import (
    DeviceCommand,
    DeviceCredential,
    HeartbeatSource,
    RelocationAlert,
    Replacement,
    StatusPeriod,
    Terminal,
    TerminalKey,
    TerminalModel,
)
from posfleet.fleet.models import Kind as Kind  # the fleet's types other contexts name (not query)
from posfleet.fleet.rules import permission_name
from posfleet.fleet.search import search_order, sn_or_tid_containing
from posfleet.fleet.states import IN_SERVICE, WITH_MERCHANT, Command, Status, commands_from
from posfleet.fleet.tallies import tallies_of, tally_differences
from posfleet.iam.models import Role, User
from posfleet.iam.selectors import organisations_told
from posfleet.parties.selectors import Agent, agents_visible_to
from posfleet.platform.errors import NotFound
from posfleet.platform.models import DataKey
from posfleet.platform.prepared import Prepared

# The fleet's types other contexts name (they read through the functions below, never query them).
__all__ = [
    "DeviceCommand",
    "DeviceCredential",
    "HeartbeatSource",
    "Kind",
    "RelocationAlert",
    "Replacement",
    "Terminal",
    "TerminalModel",
    "search_order",  # fleet.search: the order of a search's matches (the API's keyset sorts by it)
    "tally_differences",  # fleet.tallies: the fleet's counters against a recount
]

SORTABLE = {"sn", "tid", "status", "model", "agent", "merchant", "sim_expiry", "changed"}
_SORT_FIELDS = {
    "sn": "sn",
    "tid": "tid",
    "status": "status",
    "model": "model__name",
    "agent": "agent__code",
    "merchant": "merchant__mid",
    "sim_expiry": "service_expires_on",
    "changed": "status_changed_at",
}


def terminals_visible_to(user: User) -> QuerySet[Terminal]:
    qs = Terminal.objects.select_related(
        "model", "agent", "agent__organisation", "merchant", "merchant__organisation", "store"
    )
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_provider_staff:
        return qs
    if user.role == Role.AGENT and user.organisation is not None:
        # The agents of the subtree first (a few), then their terminals through the indexes that lead
        # with the agent: a join on the organisation's path let the database scan the whole fleet.
        return qs.filter(agent_id__in=agents_visible_to(user).values("pk"))
    if user.role == Role.MERCHANT and user.organisation_id is not None:
        return qs.filter(merchant__organisation_id=user.organisation_id)
    return qs.none()


def terminal_for(user: User, sn: str) -> Terminal:
    terminal = terminals_visible_to(user).filter(sn=sn.strip().upper()).first()
    if terminal is None:
        raise NotFound()
    return terminal


# What a terminal's card shows (the API's terminal) and who may act on it needs: its own columns and
# the codes of what it belongs to, not every column of the six rows joined to it (bench/api_reads.py:
# building those was the largest part of an API read).
CARD_FIELDS = (
    *(f.name for f in Terminal._meta.concrete_fields if not f.is_relation),
    "model__code",
    "agent__code",
    "agent__organisation__path",
    "merchant__mid",
    "merchant__organisation_id",
    "store__code",
)


def terminal_card(user: User, sn: str) -> Terminal:
    """``terminal_for`` with only the card's columns (``CARD_FIELDS``)."""
    # The SN is unique: no order to compile (``first()`` would add one).
    rows = terminals_visible_to(user).only(*CARD_FIELDS).filter(sn=sn.strip().upper()).order_by()[:1]
    terminal = next(iter(rows), None)
    if terminal is None:
        raise NotFound()
    return terminal


@dataclass(frozen=True)
class TerminalFilters:
    statuses: tuple[str, ...] = ()
    model: str = ""  # terminal model code
    agent: str = ""  # agent code
    merchant: str = ""  # MID
    store: str = ""  # store code (of the merchant's, when a merchant is given)
    sim_expires_from: date | None = None
    sim_expires_to: date | None = None
    q: str = ""  # free text: a part of an SN or TID (``sn_or_tid_containing``)


def search_terminals(user: User | None, filters: TerminalFilters, sort: str = "sn") -> QuerySet[Terminal]:
    """Terminals ``user`` may see that match ``filters``; ``user=None`` is the system (sees all)."""
    qs = terminals_visible_to(user) if user is not None else Terminal.objects.all()
    if filters.statuses:
        qs = qs.filter(status__in=filters.statuses)
    if filters.model:
        qs = qs.filter(model__code=filters.model)
    if filters.agent:
        qs = qs.filter(agent__code=filters.agent)
    if filters.merchant:
        qs = qs.filter(merchant__mid=filters.merchant)
    if filters.store:
        qs = qs.filter(store__code=filters.store)
    if filters.sim_expires_from:
        qs = qs.filter(service_expires_on__gte=filters.sim_expires_from)
    if filters.sim_expires_to:
        qs = qs.filter(service_expires_on__lte=filters.sim_expires_to)
    text = filters.q.strip().upper()
    if text:
        qs = qs.filter(sn_or_tid_containing(text))
    descending = sort.startswith("-")
    key = _SORT_FIELDS.get(sort.lstrip("-"), "sn")
    by = search_order(key, text)
    return qs.order_by(by.desc() if descending else by.asc(), "sn" if key != "sn" else "id")


@dataclass(frozen=True)
class ReplacementLink:
    """The other terminal of a replacement (换机), with its TID then and the moment."""

    sn: str
    tid: str
    at: datetime


def replacement_links(user: User, terminal: Terminal) -> tuple[list[ReplacementLink], list[ReplacementLink]]:
    """(the terminals ``terminal`` replaced, the terminals that replaced it), newest first, only those
    ``user`` may see (a refurbished device's earlier lives belong to other merchants)."""
    visible = terminals_visible_to(user).values("pk")
    replaced = Replacement.objects.filter(new=terminal, old__in=visible).select_related("old")
    by = Replacement.objects.filter(old=terminal, new__in=visible).select_related("new")
    return (
        [
            ReplacementLink(r.old.sn, r.old_tid, r.replaced_at)
            for r in replaced.order_by("-replaced_at", "-id")
        ],
        [ReplacementLink(r.new.sn, r.new_tid, r.replaced_at) for r in by.order_by("-replaced_at", "-id")],
    )


def allowed_commands(user: User, terminal: Terminal) -> list[Command]:
    """The commands ``user`` may run on ``terminal`` now (what the console offers)."""
    return [cmd for cmd in commands_from(terminal.status) if user.has_perm(permission_name(cmd), terminal)]


def device_commands_of(user: User, sn: str) -> tuple[Terminal, QuerySet[DeviceCommand]]:
    """The terminal ``user`` may see (``NotFound`` otherwise) with its device commands, newest first."""
    terminal = terminal_for(user, sn)
    if not user.has_perm("fleet.view_device_commands", terminal):
        raise NotFound()
    return terminal, DeviceCommand.objects.filter(terminal=terminal).order_by("-created_at", "-id")


def device_credential_of(terminal: Terminal) -> DeviceCredential | None:
    """The terminal's live (unrevoked) device credential, if any: its key id and when it was issued."""
    return DeviceCredential.objects.filter(terminal=terminal, revoked_at__isnull=True).order_by().first()


def device_commands_waiting(terminal: Terminal, at: datetime) -> int:
    """How many commands ``terminal``'s device has still to fetch or answer (its heartbeat says so)."""
    return DeviceCommand.objects.filter(
        terminal=terminal,
        status__in=(DeviceCommand.State.QUEUED, DeviceCommand.State.DELIVERED),
        expires_at__gt=at,
    ).count()


def terminal_models() -> QuerySet[TerminalModel]:
    return TerminalModel.objects.order_by("maker", "name")


def terminal_model_for(code: str) -> TerminalModel:
    model = TerminalModel.objects.filter(code=code).first()
    if model is None:
        raise NotFound()
    return model


def count_by_status(user: User) -> dict[str, int]:
    """How many terminals ``user`` may see are in each status (statuses with none left out): from the
    fleet's counters (``TerminalTally``, kept by the database; docs/adr/0034), not a count of the fleet."""
    tallies = tallies_of(user)
    rows: Iterable[tuple[str, int]] = (
        terminals_visible_to(user).order_by().values_list("status").annotate(n=Count("id"))
        if tallies is None
        else tallies.order_by().values_list("status").annotate(total=Sum("n"))
    )
    return {status: n for status, n in rows if n}


def count_by_model(user: User) -> list[tuple[str, int]]:
    """("maker name", how many) of the terminals ``user`` may see, most first (models with none left
    out), from the fleet's counters like ``count_by_status``."""
    tallies = tallies_of(user)
    rows: Iterable[tuple[str, str, int]] = (
        terminals_visible_to(user)
        .order_by()
        .values_list("model__maker", "model__name")
        .annotate(n=Count("id"))
        if tallies is None
        else tallies.order_by().values_list("model__maker", "model__name").annotate(total=Sum("n"))
    )
    counts = [(f"{maker} {name}", n) for maker, name, n in rows if n]
    return sorted(counts, key=lambda item: (-item[1], item[0]))


def sim_expiring(user: User, start: date, end: date) -> QuerySet[Terminal]:
    """Terminals in service whose SIM/service term ends between ``start`` and ``end``."""
    return (
        terminals_visible_to(user)
        .filter(status__in=IN_SERVICE, service_expires_on__gte=start, service_expires_on__lte=end)
        .order_by("service_expires_on", "sn")
    )


# Read by every ingest (the gateway's postings included): compiled once per connection and list length.
_ACTIVE_PERIODS = Prepared(
    lambda ids, since, until: (
        StatusPeriod.objects.filter(terminal_id__in=ids, status=Status.ACTIVE, started_at__lte=until)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=since))
        .order_by("terminal_id", "started_at")
        .values_list("terminal_id", "started_at", "ended_at")
    ),
    ids=[int],
    since=datetime,
    until=datetime,
)


def active_periods(
    terminal_ids: list[int], since: datetime, until: datetime
) -> dict[int, list[tuple[datetime, datetime | None]]]:
    """For each terminal, the stretches of time it was ``active`` that overlap [since, until]."""
    periods: dict[int, list[tuple[datetime, datetime | None]]] = {tid: [] for tid in terminal_ids}
    for terminal_id, started, ended in _ACTIVE_PERIODS.rows(ids=terminal_ids, since=since, until=until):
        periods[terminal_id].append((started, ended))
    return periods


def was_active(periods: list[tuple[datetime, datetime | None]], at: datetime) -> bool:
    return any(started <= at and (ended is None or at < ended) for started, ended in periods)


# -- for other contexts' services (no user scope: their callers checked who may) ---------------------


def stock_of_agent(agent: Agent, kind: str) -> QuerySet[Terminal]:
    """Terminals of model ``kind`` held by ``agent`` in stock (allocated to it, no merchant yet)."""
    return Terminal.objects.filter(
        agent=agent, status=Status.ALLOCATED, merchant__isnull=True, model__kind=kind
    ).order_by("sn")


def in_service_expiring(first: date, last: date) -> QuerySet[Terminal]:
    """Terminals in service (bound to a merchant, not stopped for good) whose service ends between
    ``first`` and ``last``: those told of their expiry."""
    return Terminal.objects.filter(
        status__in=IN_SERVICE, merchant__isnull=False, service_expires_on__range=(first, last)
    )


@dataclass(frozen=True)
class Owners:
    sn: str
    tid: str | None
    mid: str | None
    organisations: tuple[int, ...]  # who hears of the terminal's events (iam.selectors.organisations_told)


def owners_of(terminal_ids: list[int]) -> dict[int, Owners]:
    """SN, TID, MID and who hears of each terminal's events, for sweeps that announce thousands of
    terminals at once (5,000 per query)."""
    out: dict[int, Owners] = {}
    for start in range(0, len(terminal_ids), 5000):
        rows = Terminal.objects.filter(pk__in=terminal_ids[start : start + 5000]).values_list(
            "pk", "sn", "tid", "merchant__mid", "agent__organisation__path", "merchant__organisation__path"
        )
        for pk, sn, tid, mid, agent_path, merchant_path in rows:
            out[pk] = Owners(sn, tid, mid, organisations_told(agent_path, merchant_path))
    return out


def bound_by_tid(tids: set[str]) -> dict[str, tuple[int, int, int, str, int, int]]:
    """TID → (terminal id, merchant id, merchant's organisation id, MID, terminal model id, merchant's
    agent id) of the terminals with those TIDs that are bound to a merchant: what ingest prices a
    transaction against and adds it up under."""
    rows = _BOUND_BY_TID.rows(tids=sorted(tids))
    return {tid: tuple(rest) for tid, *rest in rows if tid is not None}


def _bound(tids: Collection[str]) -> QuerySet[Terminal, tuple[Any, ...]]:
    return Terminal.objects.filter(tid__in=tids, merchant__isnull=False).values_list(
        "tid",
        "pk",
        "merchant_id",
        "merchant__organisation_id",
        "merchant__mid",
        "model_id",
        "merchant__agent_id",
    )


_BOUND_BY_TID = Prepared(_bound, tids=[str])  # read by every ingest: compiled once per connection


def sn_and_merchant(terminal_id: int) -> tuple[str, int | None] | None:
    """(SN, merchant id) of terminal ``terminal_id``, or None when there is none."""
    return Terminal.objects.filter(pk=terminal_id).values_list("sn", "merchant_id").first()


def merchant_holds_terminals(merchant_id: int) -> bool:
    """Whether the merchant still holds a terminal (in service or stopped, not closed)."""
    return Terminal.objects.filter(merchant_id=merchant_id, status__in=WITH_MERCHANT).exists()


def grace_ended(last_expiry: date) -> list[tuple[int, str, date | None]]:
    """(id, SN, expiry) of the active terminals of a merchant whose service ended on or before
    ``last_expiry``, oldest expiry first: what the expiry job suspends."""
    return list(
        Terminal.objects.filter(
            status=Status.ACTIVE, service_expires_on__lte=last_expiry, merchant__isnull=False
        )
        .order_by("service_expires_on", "pk")
        .values_list("pk", "sn", "service_expires_on")
    )


def terminals_by_sn(sns: list[str]) -> dict[str, Terminal]:
    """The terminals of ``sns`` with their merchant and agent, by SN, unscoped (the caller checks who
    may see each)."""
    rows = Terminal.objects.filter(sn__in=sns).select_related(
        "merchant", "merchant__agent", "merchant__agent__organisation", "agent", "agent__organisation"
    )
    return {t.sn: t for t in rows}


def terminal_by_pk(pk: int) -> Terminal:
    return Terminal.objects.select_related("model", "agent", "merchant", "store").get(pk=pk)


def terminals_of_merchant(merchant_id: int) -> list[tuple[int, str, str, str]]:
    """(id, SN, status, status reason) of every terminal bound to the merchant now."""
    return list(
        Terminal.objects.filter(merchant_id=merchant_id).values_list("pk", "sn", "status", "status_reason")
    )


def device_command_by_key(key: str) -> DeviceCommand | None:
    """The device command sent with idempotency ``key`` (a closure's "closure:<case>:wipe"), or None:
    its ``status`` (queued, delivered, acknowledged, failed, expired), ``acknowledged_at`` and the
    device's ``result`` are the evidence of what the device did."""
    return DeviceCommand.objects.select_related("terminal").filter(key=key).order_by().first()


def active_smart_terminals() -> QuerySet[Terminal]:
    """The active smart terminals: those a device simulator plays (``posfleet simulate devices``)."""
    return Terminal.objects.filter(model__kind=Kind.SMART, status=Status.ACTIVE).order_by("sn")


def status_history(terminal_ids: list[int]) -> list[tuple[int, str, datetime, datetime | None]]:
    """(terminal id, status, started, ended) of every status period of these terminals, in order."""
    return list(
        StatusPeriod.objects.filter(terminal_id__in=sorted(terminal_ids))
        .order_by("terminal_id", "started_at", "id")
        .values_list("terminal_id", "status", "started_at", "ended_at")
    )


# In the models' field order (``Model.from_db`` reads them in that order).
_GATEWAY_KEY_FIELDS = ("pk", "terminal_id", "scheme", "data_key_id", "master_sealed", "session_sealed")
_GATEWAY_DATA_KEY_FIELDS = ("kek_id", "wrapped", "created_at", "shredded_at")
_GATEWAY_TERMINAL = ("tid", "sn", "status", "model__key_scheme", "merchant__mid")
# The gateway's look-ups, made for every message: compiled once per connection and size of list
# (platform/prepared.py).
_GATEWAY_LIVE_KEYS = Prepared(
    lambda tids: (
        TerminalKey.objects.filter(terminal__tid__in=tids, revoked_at__isnull=True)
        .order_by()
        .values_list(
            *_GATEWAY_KEY_FIELDS,
            *(f"data_key__{name}" for name in _GATEWAY_DATA_KEY_FIELDS),
            *(f"terminal__{name}" for name in _GATEWAY_TERMINAL),
        )
    ),
    tids=[str],
)
_GATEWAY_TERMINALS_ONLY = Prepared(
    lambda tids: Terminal.objects.filter(tid__in=tids).order_by().values_list("pk", *_GATEWAY_TERMINAL),
    tids=[str],
)
GatewayRow = dict[str, Any]


def terminals_for_gateway(tids: Iterable[str]) -> dict[str, tuple[GatewayRow, TerminalKey | None]]:
    """What the gateway checks messages against, by TID: each terminal's ``pk``, ``sn``, ``status``,
    ``mid`` (its merchant's) and ``key_scheme`` (its model's), and its live key (with its data key) if
    it has one; a TID no terminal has is not in the answer. One query when every terminal has a live
    key (the active ones do), two otherwise. Committed state, never cached (only the queries' SQL is:
    ``Prepared``). The key carries the fields the gateway uses; reading another one loads it from the
    database, as a deferred field does."""
    wanted = sorted({tid for tid in tids if tid})
    found: dict[str, tuple[GatewayRow, TerminalKey | None]] = {}
    if not wanted:
        return found
    for values in _GATEWAY_LIVE_KEYS.rows(tids=wanted):
        key_values = values[: len(_GATEWAY_KEY_FIELDS)]
        rest = values[len(_GATEWAY_KEY_FIELDS) :]
        data_values, terminal = rest[: len(_GATEWAY_DATA_KEY_FIELDS)], rest[len(_GATEWAY_DATA_KEY_FIELDS) :]
        key = TerminalKey.from_db("default", ["id", "terminal_id", *_GATEWAY_KEY_FIELDS[2:]], key_values)
        key.data_key = DataKey.from_db(
            "default", ["id", *_GATEWAY_DATA_KEY_FIELDS], (key.data_key_id, *data_values)
        )
        found[terminal[0]] = (_gateway_row(key.terminal_id, terminal), key)
    missing = [tid for tid in wanted if tid not in found]
    if missing:
        for values in _GATEWAY_TERMINALS_ONLY.rows(tids=missing):
            found[values[1]] = (_gateway_row(values[0], values[1:]), None)
    return found


def _gateway_row(pk: int, terminal: Sequence[Any]) -> GatewayRow:
    _tid, sn, status, scheme, mid = terminal
    return {"pk": pk, "sn": sn, "status": status, "model__key_scheme": scheme, "mid": mid}


def terminals_with_live_key(tids: list[str] | None = None) -> QuerySet[Terminal]:
    """Active terminals with a TID, a merchant and an unrevoked key — those that can sign on to the
    gateway, which the terminal simulator plays (``posfleet simulate terminals``) — with their merchant,
    store and model; only ``tids`` when given. Ordered by SN."""
    found = Terminal.objects.filter(
        Exists(TerminalKey.objects.filter(terminal=OuterRef("pk"), revoked_at__isnull=True)),
        status=Status.ACTIVE,
        tid__isnull=False,
        merchant__isnull=False,
    )
    if tids is not None:
        found = found.filter(tid__in=tids)
    return found.select_related("merchant", "store", "model").order_by("sn")
