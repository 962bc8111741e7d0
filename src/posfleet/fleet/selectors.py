"""Reading the fleet, always through the user's scope: others' terminals are simply not there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, Q, QuerySet

from posfleet.fleet.models import Replacement, StatusPeriod, Terminal, TerminalModel
from posfleet.fleet.rules import permission_name
from posfleet.fleet.states import Command, Status, commands_from
from posfleet.iam.models import Role, User
from posfleet.platform.errors import NotFound

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
    if user.role in {Role.ADMIN, Role.REVIEWER, Role.WAREHOUSE}:
        return qs
    if user.role == Role.AGENT and user.organisation is not None:
        return qs.filter(agent__organisation__path__startswith=user.organisation.path)
    if user.role == Role.MERCHANT and user.organisation_id is not None:
        return qs.filter(merchant__organisation_id=user.organisation_id)
    return qs.none()


def terminal_for(user: User, sn: str) -> Terminal:
    terminal = terminals_visible_to(user).filter(sn=sn.strip().upper()).first()
    if terminal is None:
        raise NotFound()
    return terminal


@dataclass(frozen=True)
class TerminalFilters:
    statuses: tuple[str, ...] = ()
    model: str = ""  # terminal model code
    agent: str = ""  # agent code
    merchant: str = ""  # MID
    sim_expires_from: date | None = None
    sim_expires_to: date | None = None
    q: str = ""  # free text: part of an SN or TID


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
    if filters.sim_expires_from:
        qs = qs.filter(service_expires_on__gte=filters.sim_expires_from)
    if filters.sim_expires_to:
        qs = qs.filter(service_expires_on__lte=filters.sim_expires_to)
    text = filters.q.strip().upper()
    if text:
        qs = qs.filter(Q(sn__contains=text) | Q(tid__contains=text))
    descending = sort.startswith("-")
    key = _SORT_FIELDS.get(sort.lstrip("-"), "sn")
    return qs.order_by(f"-{key}" if descending else key, "sn" if key != "sn" else "id")


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


def terminal_models() -> QuerySet[TerminalModel]:
    return TerminalModel.objects.order_by("maker", "name")


def terminal_model_for(code: str) -> TerminalModel:
    model = TerminalModel.objects.filter(code=code).first()
    if model is None:
        raise NotFound()
    return model


def count_by_status(user: User) -> dict[str, int]:
    rows = terminals_visible_to(user).order_by().values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def count_by_model(user: User) -> list[tuple[str, int]]:
    rows = (
        terminals_visible_to(user)
        .order_by()
        .values("model__maker", "model__name")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    return [(f"{r['model__maker']} {r['model__name']}", r["n"]) for r in rows]


# Terminals whose service expiry matters: out in the field with a merchant (or on the way to one).
IN_SERVICE = (Status.SHIPPED, Status.BOUND, Status.ACTIVE, Status.SUSPENDED, Status.DEACTIVATED)


def sim_expiring(user: User, start: date, end: date) -> QuerySet[Terminal]:
    """Terminals in service whose SIM/service term ends between ``start`` and ``end``."""
    return (
        terminals_visible_to(user)
        .filter(status__in=IN_SERVICE, service_expires_on__gte=start, service_expires_on__lte=end)
        .order_by("service_expires_on", "sn")
    )


def active_periods(
    terminal_ids: list[int], since: datetime, until: datetime
) -> dict[int, list[tuple[datetime, datetime | None]]]:
    """For each terminal, the stretches of time it was ``active`` that overlap [since, until]."""
    periods: dict[int, list[tuple[datetime, datetime | None]]] = {tid: [] for tid in terminal_ids}
    rows = (
        StatusPeriod.objects.filter(terminal_id__in=terminal_ids, status=Status.ACTIVE, started_at__lte=until)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=since))
        .order_by("terminal_id", "started_at")
        .values_list("terminal_id", "started_at", "ended_at")
    )
    for terminal_id, started, ended in rows:
        periods[terminal_id].append((started, ended))
    return periods


def was_active(periods: list[tuple[datetime, datetime | None]], at: datetime) -> bool:
    return any(started <= at and (ended is None or at < ended) for started, ended in periods)
