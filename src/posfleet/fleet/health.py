"""A terminal's health: online, offline, silent; where it is against its store; its open relocation
alert and its gateway key — what the terminal page and the silent-terminals list show.

The one definition of a terminal's connectivity, read from ``Terminal.last_heartbeat_at`` (written by
``fleet.services.terminal_heartbeat`` from the device channel and the gateway). Every screen and list
imports these: ``online_q``/``silent_q`` for queries, ``connectivity`` for one terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from django.db.models import F, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from posfleet.fleet.geo import distance_m
from posfleet.fleet.models import RelocationAlert, Terminal, TerminalKey
from posfleet.fleet.selectors import TerminalFilters, search_terminals
from posfleet.fleet.states import Status
from posfleet.iam.models import User

ONLINE_WITHIN = timedelta(minutes=10)  # a heartbeat this recent: online
SILENT_AFTER = timedelta(hours=24)  # no heartbeat for this long (or never): silent, to look into


class Connectivity(StrEnum):
    ONLINE = "online"  # a heartbeat within ONLINE_WITHIN
    OFFLINE = "offline"  # heartbeats before, none within ONLINE_WITHIN
    NEVER = "never"  # never sent a heartbeat

    @property
    def label(self) -> str:
        return str(CONNECTIVITY_LABELS[self])


CONNECTIVITY_LABELS = {
    Connectivity.ONLINE: _("online"),
    Connectivity.OFFLINE: _("offline"),
    Connectivity.NEVER: _("never seen"),
}


def online_q(at: datetime) -> Q:
    """Terminals online at ``at``: a heartbeat within ``ONLINE_WITHIN``."""
    return Q(last_heartbeat_at__gt=at - ONLINE_WITHIN)


def silent_q(at: datetime) -> Q:
    """Terminals silent at ``at``: no heartbeat for ``SILENT_AFTER`` or more, or never one."""
    return Q(last_heartbeat_at__isnull=True) | Q(last_heartbeat_at__lte=at - SILENT_AFTER)


def connectivity(last_heartbeat_at: datetime | None, at: datetime) -> Connectivity:
    """``online_q`` for one terminal's last heartbeat."""
    if last_heartbeat_at is None:
        return Connectivity.NEVER
    return Connectivity.ONLINE if last_heartbeat_at > at - ONLINE_WITHIN else Connectivity.OFFLINE


def is_silent(last_heartbeat_at: datetime | None, at: datetime) -> bool:
    """``silent_q`` for one terminal's last heartbeat."""
    return last_heartbeat_at is None or last_heartbeat_at <= at - SILENT_AFTER


@dataclass(frozen=True)
class Position:
    latitude: Decimal
    longitude: Decimal
    accuracy_m: int | None = None


@dataclass(frozen=True)
class TerminalHealth:
    """What the terminal page shows of a terminal's health."""

    connectivity: Connectivity
    silent: bool
    last_heartbeat_at: datetime | None
    firmware: str
    location: Position | None  # where the device last said it was
    store_location: Position | None  # the coordinates of its store, when the store has them
    distance_m: int | None  # between the two, when both are known
    open_alert: RelocationAlert | None
    key: TerminalKey | None  # its gateway key: the live one, else the last one (revoked)


def _position(location: object) -> Position | None:
    if not isinstance(location, dict):
        return None
    lat, lon, accuracy = location.get("lat"), location.get("lon"), location.get("accuracy_m")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    return Position(
        Decimal(str(lat)), Decimal(str(lon)), round(accuracy) if isinstance(accuracy, int | float) else None
    )


def terminal_health(terminal: Terminal, at: datetime) -> TerminalHealth:
    """The health of ``terminal`` (read with its store, as ``terminals_visible_to`` gives it) at
    ``at``. The caller checked that the reader may see the terminal."""
    location = _position(terminal.last_location)
    store = terminal.store
    store_location = (
        Position(store.latitude, store.longitude)
        if store is not None and store.latitude is not None and store.longitude is not None
        else None
    )
    distance = (
        distance_m(location.latitude, location.longitude, store_location.latitude, store_location.longitude)
        if location is not None and store_location is not None
        else None
    )
    return TerminalHealth(
        connectivity=connectivity(terminal.last_heartbeat_at, at),
        silent=is_silent(terminal.last_heartbeat_at, at),
        last_heartbeat_at=terminal.last_heartbeat_at,
        firmware=terminal.firmware_version,
        location=location,
        store_location=store_location,
        distance_m=distance,
        open_alert=open_relocation_alert(terminal),
        key=latest_key(terminal.pk),
    )


def latest_key(terminal_id: int) -> TerminalKey | None:
    """The terminal's gateway key: the live one, else the last revoked (check values only are shown)."""
    return (
        TerminalKey.objects.filter(terminal_id=terminal_id)
        .order_by(F("revoked_at").desc(nulls_first=True), "-issued_at", "-pk")
        .defer("master_sealed", "session_sealed")
        .first()
    )


def silent_terminals(user: User, filters: TerminalFilters, at: datetime) -> QuerySet[Terminal]:
    """The active terminals ``user`` may see that match ``filters`` and are silent at ``at``
    (``silent_q``): never heard of first, then the longest silent."""
    qs = search_terminals(user, filters).filter(silent_q(at), status=Status.ACTIVE)
    return qs.order_by(F("last_heartbeat_at").asc(nulls_first=True), "sn")


def open_relocation_alert(terminal: Terminal) -> RelocationAlert | None:
    """The terminal's open relocation alert, if any (at most one: ``relocation_alert_one_open``)."""
    return (
        RelocationAlert.objects.select_related("store")
        .filter(terminal=terminal, status=RelocationAlert.Status.OPEN)
        .order_by()
        .first()
    )
