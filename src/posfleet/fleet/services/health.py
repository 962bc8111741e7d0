"""Device health: heartbeats from every source, and relocation alerts (移机告警) with their review.

``terminal_heartbeat`` is the one entry point of a heartbeat, whoever carries it: the device channel of
smart terminals (``source="device_channel"``, through ``device_heartbeat``) and the ISO 8583 gateway
(``source="gateway"``, a network-management message, from its worker threads with the Terminal it
loaded by TID). A heartbeat is telemetry, not a change of record: it moves ``last_heartbeat_at``,
``last_location`` and ``firmware_version`` and nothing else is written; online, offline and silent are
read from ``last_heartbeat_at`` by ``fleet.health`` (``ONLINE_WITHIN``, ``SILENT_AFTER``). Two things
a heartbeat can report are changes and are recorded (audit row and outbox event, in one transaction):

- new firmware (``device.firmware_reported``, ``device.firmware_changed``);
- a position more than ``POSFLEET_RELOCATION_DISTANCE_M`` (default 2,000 m) from the coordinates of
  the terminal's store, beyond the fix's own accuracy (``distance - accuracy_m > limit``): a
  relocation alert is raised (``device.relocation_alert_raised``, ``device.relocation_alert_changed``).

Cost of the usual beat (no new firmware, no position far from the store): one UPDATE without a
position; with a position, one more read (the store's coordinates) unless the Terminal came with its
store loaded. Only new firmware or a far position opens a transaction and takes the terminal's row lock.

A heartbeat older than the last one recorded (a gateway worker that lagged behind the device channel)
changes nothing: the newest facts stay.

Relocation alerts, decided once here:

- at most one open alert per terminal (``relocation_alert_one_open``; two beats racing raise one). A
  far beat while an alert is open changes nothing: the alert keeps the evidence of its detection
  (both positions and their distance, computed once) and the terminal's ``last_location`` shows where
  the device is now (the terminal page shows both, with the current distance);
- a near beat does not close an open alert: a person reviews every alert;
- once reviewed (confirmed moved or dismissed), the reported place counts as known: a new alert is
  raised only when the terminal reports a position far from its store AND more than the limit away
  from the position that alert reviewed (it moved again), or its store changed;
- a terminal without a store, or whose store has no coordinates, raises none.

Review: ``relocation_alert_confirm_moved`` (the terminal did move; what follows — a new store address,
unbinding — is done through their own services) and ``relocation_alert_dismiss`` (a false alarm; the
note says why). Each locks the alert, answers 404 to whoever may not see its terminal, 403 to whoever
may not review (``fleet.review_relocation_alert``: the provider's admins), 409 to a second review, and
moves the status by compare-and-set with its audit row and outbox event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, clean_text, record, record_many
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.events import DeviceFirmwareChanged, RelocationAlertChanged
from posfleet.fleet.geo import degrees, distance_m, haversine_m
from posfleet.fleet.models import HeartbeatSource, RelocationAlert, Terminal
from posfleet.fleet.relocation_states import NOTE_REQUIRED, RelocationCommand, RelocationStatus, next_state
from posfleet.fleet.services.device_input import check_firmware, check_location
from posfleet.fleet.services.lifecycle import organisations_of
from posfleet.iam.models import User
from posfleet.parties import selectors as parties
from posfleet.platform import clock
from posfleet.platform.context import Actor
from posfleet.platform.errors import Conflict, NotFound, TransitionNotAllowed, ValidationFailed
from posfleet.platform.events import publish

DEFAULT_RELOCATION_DISTANCE_M = 2000
NOTE_MAX = 500


def relocation_distance_m() -> int:
    """How far from its store (metres) a terminal's reported position raises a relocation alert."""
    return int(getattr(settings, "POSFLEET_RELOCATION_DISTANCE_M", DEFAULT_RELOCATION_DISTANCE_M))


@dataclass(frozen=True)
class Heartbeat:
    """What one heartbeat did."""

    terminal: Terminal  # as it is now (the fields the beat wrote are set on the instance)
    accepted: bool  # False: older than the last heartbeat recorded, so nothing changed
    distance_m: int | None = None  # from the store, when the beat had a position and the store has one
    firmware_changed: bool = False
    alert: RelocationAlert | None = None  # the relocation alert this beat raised


@dataclass(frozen=True)
class _Away:
    """A reported position beyond the limit from the terminal's store."""

    store_id: int
    store_latitude: Decimal
    store_longitude: Decimal
    distance_m: int


def _check_source(source: str) -> HeartbeatSource:
    try:
        return HeartbeatSource(source)
    except ValueError as exc:
        raise ValidationFailed(
            _("Unknown heartbeat source “%(source)s”.") % {"source": str(source)[:32]},
            field="source",
            allowed=list(HeartbeatSource.values),
        ) from exc


def _source_actor(terminal: Terminal, source: HeartbeatSource, actor: Actor | None) -> Actor:
    """Who a heartbeat's changes are recorded as: the caller's actor, else the device or the gateway
    (``Actor.system("device <SN>")``, ``Actor.system("gateway <SN>")``)."""
    if actor is not None:
        return actor
    who = "gateway" if source == HeartbeatSource.GATEWAY else "device"
    return Actor.system(f"{who} {terminal.sn}")


def _store_point(terminal: Terminal) -> tuple[Decimal, Decimal] | None:
    """The coordinates of the terminal's store: from the loaded store when the caller read it with the
    terminal, else one read of two columns."""
    if terminal.store_id is None:
        return None
    if Terminal.store.is_cached(terminal):
        store = terminal.store
        if store is None or store.latitude is None or store.longitude is None:
            return None
        return store.latitude, store.longitude
    return parties.store_coordinates(terminal.store_id)


def _measure(terminal: Terminal, place: Mapping[str, float]) -> tuple[int | None, _Away | None]:
    """(distance from the store in metres or None, the _Away when it is beyond the limit)."""
    point = _store_point(terminal)
    if point is None or terminal.store_id is None:
        return None, None
    distance = distance_m(place["lat"], place["lon"], point[0], point[1])
    accuracy = place.get("accuracy_m") or 0.0
    if distance - accuracy > relocation_distance_m():
        return distance, _Away(terminal.store_id, point[0], point[1], distance)
    return distance, None


def _not_older_than(at: datetime) -> Q:
    return Q(last_heartbeat_at__isnull=True) | Q(last_heartbeat_at__lte=at)


def terminal_heartbeat(
    *,
    terminal: Terminal,
    at: datetime | None = None,
    firmware: str = "",
    location: Mapping[str, Any] | None = None,
    source: str = HeartbeatSource.DEVICE_CHANNEL,
    actor: Actor | None = None,
) -> Heartbeat:
    """``terminal`` is alive at ``at`` (now when None), says its ``source``, with its firmware version
    ("": not reported) and, when it has a fix, where it is (``{"lat", "lon", "accuracy_m"}``, WGS-84).

    The caller has established which terminal it is (the device's credential, the gateway's TID and
    MAC); its changes are recorded as ``actor``, else as the device or the gateway. A bad firmware
    string, location or source is refused (422) before anything is written; a terminal that no longer
    exists is ``NotFound``. See the module's docstring for what is recorded and what a beat costs.
    """
    beat_source = _check_source(source)
    firmware = check_firmware(firmware)
    place = check_location(location)
    at = at if at is not None else clock.now()
    fields: dict[str, Any] = {"last_heartbeat_at": at}
    if place is not None:
        fields["last_location"] = place
    distance, away = _measure(terminal, place) if place is not None else (None, None)
    if (not firmware or firmware == terminal.firmware_version) and away is None:
        # The usual beat: one plain UPDATE, no lock (no save(): django-auditlog keeps no diff of telemetry).
        if not Terminal.objects.filter(_not_older_than(at), pk=terminal.pk).update(**fields):
            if not Terminal.objects.filter(pk=terminal.pk).exists():
                raise NotFound()
            return Heartbeat(terminal, accepted=False)
        for name, value in fields.items():
            setattr(terminal, name, value)
        return Heartbeat(terminal, accepted=True, distance_m=distance)
    with transaction.atomic():
        row = (
            Terminal.objects.select_for_update(of=("self",))
            .filter(pk=terminal.pk)
            .order_by()
            .values_list("firmware_version", "last_heartbeat_at", "store_id")
            .first()
        )
        if row is None:
            raise NotFound()
        current, last_at, store_id = row
        if last_at is not None and last_at > at:
            return Heartbeat(terminal, accepted=False)
        changed = bool(firmware) and firmware != current
        if changed:
            fields["firmware_version"] = firmware
        Terminal.objects.filter(pk=terminal.pk).update(**fields)
        for name, value in fields.items():
            setattr(terminal, name, value)
        who = _source_actor(terminal, beat_source, actor)
        entries: list[Entry] = []
        alert = None
        if away is not None and place is not None and store_id == away.store_id:
            alert = _raise_relocation(terminal, away, place, at, beat_source, entries)
        if changed:
            publish(
                [
                    DeviceFirmwareChanged(
                        aggregate_id=terminal.sn,
                        organisation_ids=organisations_of(terminal),
                        from_version=current,
                        to_version=firmware,
                    )
                ],
                occurred_at=at,
            )
            entries.append(
                Entry(
                    event_type=EventType.DEVICE_FIRMWARE_REPORTED,
                    subject_type="terminal",
                    subject_id=terminal.sn,
                    before={"firmware": current},
                    after={"firmware": firmware},
                    occurred_at=at,
                )
            )
        # The audit rows last: the chain's head stays locked from here to the commit.
        record_many(who, entries)
    return Heartbeat(terminal, accepted=True, distance_m=distance, firmware_changed=changed, alert=alert)


def _raise_relocation(
    terminal: Terminal,
    away: _Away,
    place: Mapping[str, float],
    at: datetime,
    source: HeartbeatSource,
    entries: list[Entry],
) -> RelocationAlert | None:
    """Open a relocation alert for ``terminal`` (its row locked by the caller) unless one is open, or
    the last one reviewed this place already (see the module's docstring); appends its audit entry."""
    latest = (
        RelocationAlert.objects.filter(terminal_id=terminal.pk)
        .order_by("-detected_at", "-id")
        .only("status", "store_id", "reported_latitude", "reported_longitude")
        .first()
    )
    if latest is not None:
        if latest.status == RelocationStatus.OPEN:
            return None
        known = haversine_m(
            place["lat"], place["lon"], float(latest.reported_latitude), float(latest.reported_longitude)
        )
        if latest.store_id == away.store_id and known <= relocation_distance_m():
            return None
    accuracy = place.get("accuracy_m")
    try:
        with transaction.atomic():  # a savepoint: another beat may have opened one first
            alert = RelocationAlert.objects.create(
                terminal=terminal,
                store_id=away.store_id,
                reported_latitude=degrees(place["lat"]),
                reported_longitude=degrees(place["lon"]),
                accuracy_m=round(accuracy) if accuracy is not None else None,
                store_latitude=away.store_latitude,
                store_longitude=away.store_longitude,
                distance_m=away.distance_m,
                detected_at=at,
                source=source,
            )
    except IntegrityError:
        return None
    store_code = alert.store.code
    publish([_alert_event(alert, terminal, store_code)], occurred_at=at)
    entries.append(
        Entry(
            event_type=EventType.RELOCATION_ALERT_RAISED,
            subject_type="terminal",
            subject_id=terminal.sn,
            after={
                "alert": alert.pk,
                "alert_status": alert.status,
                "store": store_code,
                "distance_m": alert.distance_m,
                "reported": _coordinates(alert.reported_latitude, alert.reported_longitude),
                "store_location": _coordinates(alert.store_latitude, alert.store_longitude),
                "source": str(source),
            },
            occurred_at=at,
        )
    )
    return alert


def _coordinates(latitude: Decimal, longitude: Decimal) -> str:
    return f"{latitude}, {longitude}"


def _alert_event(alert: RelocationAlert, terminal: Terminal, store_code: str) -> RelocationAlertChanged:
    return RelocationAlertChanged(
        aggregate_id=str(alert.pk),
        organisation_ids=organisations_of(terminal),
        sn=terminal.sn,
        status=alert.status,
        distance_m=alert.distance_m,
        store=store_code,
        merchant=terminal.merchant.mid if terminal.merchant is not None else None,
        source=alert.source,
    )


# ---------------------------------------------------------------------------------------------
# Review


def relocation_alert_lock(actor: Actor, alert_id: int) -> RelocationAlert:
    """Alert ``alert_id`` row-locked, with its terminal; ``NotFound`` (404) when ``actor`` may not see
    the terminal (others' alerts are simply not there)."""
    alert = (
        RelocationAlert.objects.select_for_update(of=("self",))
        .select_related(
            "terminal",
            "terminal__agent",
            "terminal__agent__organisation",
            "terminal__merchant",
            "terminal__merchant__organisation",
            "store",
        )
        .filter(pk=alert_id)
        .order_by()
        .first()
    )
    if alert is None:
        raise NotFound()
    actor.must_see("fleet.view_relocation_alert", alert.terminal)
    return alert


_REVIEW_EVENT = {
    RelocationCommand.CONFIRM_MOVED: EventType.RELOCATION_CONFIRMED,
    RelocationCommand.DISMISS: EventType.RELOCATION_DISMISSED,
}


def _review(actor: Actor, alert_id: int, command: RelocationCommand, note: str) -> RelocationAlert:
    note = clean_text(note or "", NOTE_MAX).strip()
    with transaction.atomic():
        alert = relocation_alert_lock(actor, alert_id)
        terminal = alert.terminal
        person: User = actor.require_person("fleet.review_relocation_alert", terminal)
        source = alert.status
        target = next_state(source, command)
        if target is None:
            raise TransitionNotAllowed(
                _("This relocation alert was reviewed already (%(status)s).")
                % {"status": RelocationStatus(source).label},
                current_status=source,
            )
        if command in NOTE_REQUIRED and not note:
            raise ValidationFailed(_("Say in the note why this alert is a false alarm."), field="note")
        at = clock.now()
        if not RelocationAlert.objects.filter(pk=alert.pk, status=source).update(
            status=target, reviewed_by=person, reviewed_at=at, note=note
        ):
            raise Conflict()
        alert.status, alert.reviewed_by, alert.reviewed_at, alert.note = target, person, at, note
        publish([_alert_event(alert, terminal, alert.store.code)], occurred_at=at)
        record(
            actor,
            Entry(
                event_type=_REVIEW_EVENT[command],
                subject_type="terminal",
                subject_id=terminal.sn,
                note=note,
                before={"alert": alert.pk, "alert_status": source},
                after={"alert": alert.pk, "alert_status": target, "distance_m": alert.distance_m},
                occurred_at=at,
            ),
        )
    return alert


def relocation_alert_confirm_moved(*, actor: Actor, alert_id: int, note: str = "") -> RelocationAlert:
    """The terminal did move away from its store: ``open`` → ``confirmed_moved``. What follows (the
    store's new address, unbinding the terminal) goes through those services."""
    return _review(actor, alert_id, RelocationCommand.CONFIRM_MOVED, note)


def relocation_alert_dismiss(*, actor: Actor, alert_id: int, note: str) -> RelocationAlert:
    """A false alarm (a poor fix, a trade fair…): ``open`` → ``dismissed``; ``note`` says why."""
    return _review(actor, alert_id, RelocationCommand.DISMISS, note)


def relocation_alert_review(*, actor: Actor, alert_id: int, action: str, note: str = "") -> RelocationAlert:
    """Run the review named ``action`` (``confirm_moved`` or ``dismiss``): the console's entry point."""
    try:
        command = RelocationCommand(action)
    except ValueError as exc:
        raise ValidationFailed(
            _("Unknown action “%(action)s”.") % {"action": str(action)[:32]},
            field="action",
            allowed=[c.value for c in RelocationCommand],
        ) from exc
    return _review(actor, alert_id, command, note)
