"""Device health at the service level: one heartbeat entry point for the device channel and the
gateway, online/offline/silent defined once, and relocation alerts (移机告警): raised once when a
reported position is far from the store, never for a near one or a store without coordinates, reviewed
once (confirm moved, dismiss) with an audit row and an outbox event, refused for others (404) and for
those who may not review (403), a refusal changing nothing."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings

from posfleet.audit.models import AuditEvent
from posfleet.audit.verify import verify_chain
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.geo import EARTH_RADIUS_M, distance_m, haversine_m
from posfleet.fleet.health import (
    ONLINE_WITHIN,
    SILENT_AFTER,
    Connectivity,
    connectivity,
    online_q,
    silent_terminals,
    terminal_health,
)
from posfleet.fleet.models import RelocationAlert, Terminal
from posfleet.fleet.relocation_alerts import relocation_alert_for, relocation_alerts_visible_to
from posfleet.fleet.relocation_states import FINAL, INITIAL, TRANSITIONS, RelocationStatus, commands_from
from posfleet.fleet.selectors import TerminalFilters
from posfleet.fleet.services import (
    device_heartbeat,
    relocation_alert_confirm_moved,
    relocation_alert_dismiss,
    relocation_alert_review,
    terminal_heartbeat,
)
from posfleet.fleet.states import Status
from posfleet.parties.models import Store
from posfleet.platform.clock import now
from posfleet.platform.errors import NotFound, PermissionDenied, TransitionNotAllowed, ValidationFailed
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import SYSTEM, make_terminal
from posfleet.testing.refusals import assert_nothing_recorded

SN_A = "SN-HLT-A-001"  # merchant A (agent A), store S1 in Shanghai
SN_B = "SN-HLT-B-001"  # merchant B (agent B), no store
# Shanghai, People's Square (the store) and places around it, WGS-84.
STORE = (Decimal("31.230416"), Decimal("121.473701"))
NEAR = {"lat": 31.2350, "lon": 121.4800}  # 786 m away
SUZHOU = {"lat": 31.298886, "lon": 120.585316}  # about 85 km away
BEIJING = {"lat": 39.908722, "lon": 116.397499}  # Tiananmen, about 1,068 km away
PERSONAS = ["admin", "reviewer", "warehouse", "agent_a", "agent_a1", "agent_b", "merchant_a", "merchant_b"]


@pytest.fixture
def fleet(world) -> dict[str, Terminal]:
    Store.objects.filter(pk=world.store_a.pk).update(latitude=STORE[0], longitude=STORE[1])
    a = make_terminal(world, SN_A, Status.ACTIVE, merchant=world.merchant_a)
    Terminal.objects.filter(pk=a.pk).update(store=world.store_a)
    b = make_terminal(world, SN_B, Status.ACTIVE, merchant=world.merchant_b)
    return {SN_A: Terminal.objects.get(pk=a.pk), SN_B: b}


def fresh(sn: str) -> Terminal:
    """The terminal as a caller loads it (the gateway by TID, the device channel by credential)."""
    return Terminal.objects.get(sn=sn)


def seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def events_since(start: int) -> list[str]:
    return list(AuditEvent.objects.filter(seq__gt=start).order_by("seq").values_list("event_type", flat=True))


# ---------------------------------------------------------------------------------------------
# Geometry


def test_haversine_on_known_pairs_of_cities():
    # Tiananmen (Beijing) to People's Square (Shanghai): the spherical law of cosines, another formula
    # for the same great circle, gives 1,068,141 m on this radius; haversine agrees within a metre.
    lat1, lon1, lat2, lon2 = 39.908722, 116.397499, 31.230416, 121.473701
    p1, p2 = math.radians(lat1), math.radians(lat2)
    cosines = EARTH_RADIUS_M * math.acos(
        math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(math.radians(lon2 - lon1))
    )
    assert abs(haversine_m(lat1, lon1, lat2, lon2) - cosines) < 1
    assert distance_m(lat1, lon1, lat2, lon2) == 1_068_141
    # Rosetta Code's haversine task: Nashville (BNA) to Los Angeles (LAX) is 2,887.2599506 km on a
    # sphere of 6,372.8 km; scaled to that radius ours is within a metre of it.
    nashville_lax = haversine_m(36.12, -86.67, 33.94, -118.40) * 6_372_800 / EARTH_RADIUS_M
    assert abs(nashville_lax - 2_887_259.9506) < 1
    assert haversine_m(31.2, 121.4, 31.2, 121.4) == 0
    assert distance_m(NEAR["lat"], NEAR["lon"], *STORE) == 786


def test_the_relocation_machine_is_small_and_final():
    assert INITIAL == RelocationStatus.OPEN
    assert {target for target in TRANSITIONS.values()} == set(FINAL)
    assert all(commands_from(state) == [] for state in FINAL)
    assert [c.value for c in commands_from(RelocationStatus.OPEN)] == ["confirm_moved", "dismiss"]


# ---------------------------------------------------------------------------------------------
# Heartbeats from both sources


@pytest.mark.parametrize("source", ["device_channel", "gateway"])
def test_a_heartbeat_from_either_source_sets_last_seen_and_records_nothing(fleet, source):
    start, outbox = seq(), OutboxMessage.objects.count()
    at = now()
    beat = terminal_heartbeat(terminal=fresh(SN_A), at=at, source=source)
    assert (beat.accepted, beat.alert, beat.distance_m) == (True, None, None)
    row = fresh(SN_A)
    assert row.last_heartbeat_at == at
    assert row.last_location is None
    assert events_since(start) == []
    assert OutboxMessage.objects.count() == outbox


def test_the_device_channel_keeps_its_entry_point(fleet):
    terminal = device_heartbeat(terminal=fresh(SN_A), location=NEAR)
    row = fresh(SN_A)
    assert row.last_heartbeat_at is not None
    assert row.last_location == NEAR
    assert terminal.last_location == NEAR
    assert not RelocationAlert.objects.exists()


def test_new_firmware_from_the_gateway_is_recorded_as_the_gateway(fleet):
    start = seq()
    terminal_heartbeat(terminal=fresh(SN_A), firmware="V2.0", source="gateway")
    audit = AuditEvent.objects.get(seq__gt=start)
    assert (audit.event_type, audit.actor_kind, audit.actor_label, audit.after) == (
        EventType.DEVICE_FIRMWARE_REPORTED,
        "system",
        f"gateway {SN_A}",
        {"firmware": "V2.0"},
    )
    assert fresh(SN_A).firmware_version == "V2.0"


def test_an_unknown_source_is_refused_before_anything_is_written(fleet):
    terminal = fresh(SN_A)
    with assert_nothing_recorded(terminal), pytest.raises(ValidationFailed) as refused:
        terminal_heartbeat(terminal=terminal, source="carrier_pigeon", location=BEIJING)
    assert refused.value.params["field"] == "source"
    assert not RelocationAlert.objects.exists()


def test_a_heartbeat_older_than_the_last_one_changes_nothing(fleet):
    at = now()
    terminal_heartbeat(terminal=fresh(SN_A), at=at, location=NEAR, source="device_channel")
    terminal = fresh(SN_A)
    with assert_nothing_recorded(terminal):
        late = terminal_heartbeat(
            terminal=terminal, at=at - timedelta(seconds=30), location=SUZHOU, firmware="V9", source="gateway"
        )
        also_late = terminal_heartbeat(terminal=fresh(SN_A), at=at - timedelta(seconds=30), source="gateway")
    assert (late.accepted, late.alert, also_late.accepted) == (False, None, False)
    assert fresh(SN_A).last_location == NEAR
    assert not RelocationAlert.objects.exists()


def test_a_usual_beat_costs_one_query_and_one_more_with_a_position(fleet, django_assert_num_queries):
    terminal = fresh(SN_A)
    with django_assert_num_queries(1):
        terminal_heartbeat(terminal=terminal, source="gateway")
    with django_assert_num_queries(2):  # the store's coordinates, the UPDATE
        terminal_heartbeat(terminal=terminal, location=NEAR, source="gateway")
    loaded = Terminal.objects.select_related("store").get(sn=SN_A)
    with django_assert_num_queries(1):  # the store came with the terminal
        terminal_heartbeat(terminal=loaded, location=NEAR, source="gateway")


def test_a_heartbeat_of_a_terminal_gone_is_not_found(fleet):
    ghost = Terminal(pk=999_999, sn="SN-GONE-001")
    with pytest.raises(NotFound):
        terminal_heartbeat(terminal=ghost, source="gateway")


# ---------------------------------------------------------------------------------------------
# Relocation alerts: raised


def test_a_far_position_raises_exactly_one_open_alert_with_its_distance(fleet):
    start, outbox = seq(), OutboxMessage.objects.count()
    beat = terminal_heartbeat(terminal=fresh(SN_A), location=BEIJING, source="gateway")
    alert = RelocationAlert.objects.get()
    assert beat.alert == alert
    assert beat.distance_m == alert.distance_m
    assert abs(alert.distance_m - 1_068_141) <= 1
    assert (alert.status, alert.source, alert.terminal_id, alert.store_id) == (
        "open",
        "gateway",
        fleet[SN_A].pk,
        fleet[SN_A].store_id,
    )
    assert (alert.reported_latitude, alert.reported_longitude) == (
        Decimal("39.908722"),
        Decimal("116.397499"),
    )
    assert (alert.store_latitude, alert.store_longitude) == STORE
    assert alert.accuracy_m is None
    assert events_since(start) == [EventType.RELOCATION_ALERT_RAISED]
    audit = AuditEvent.objects.get(seq__gt=start)
    assert (audit.subject_type, audit.subject_id, audit.actor_label) == ("terminal", SN_A, f"gateway {SN_A}")
    assert audit.after == {
        "alert": alert.pk,
        "alert_status": "open",
        "store": "S1",
        "distance_m": alert.distance_m,
        "reported": "39.908722, 116.397499",
        "store_location": "31.230416, 121.473701",
        "source": "gateway",
    }
    assert OutboxMessage.objects.count() == outbox + 1
    event = OutboxMessage.objects.order_by("-id").first()
    assert event.event_type == "device.relocation_alert_changed"
    assert event.payload == {
        "aggregate_id": str(alert.pk),
        "sn": SN_A,
        "status": "open",
        "distance_m": alert.distance_m,
        "store": "S1",
        "merchant": "100000000000001",
        "source": "gateway",
    }
    assert verify_chain().ok


def test_a_later_far_beat_while_an_alert_is_open_changes_only_the_terminals_position(fleet):
    first = terminal_heartbeat(terminal=fresh(SN_A), location=SUZHOU, source="device_channel").alert
    assert first is not None
    alert_row = RelocationAlert.objects.filter(pk=first.pk)
    with assert_nothing_recorded(alert_row):
        again = terminal_heartbeat(terminal=fresh(SN_A), location=BEIJING, source="gateway")
    assert again.alert is None
    assert RelocationAlert.objects.count() == 1
    assert fresh(SN_A).last_location == BEIJING  # where the device is now
    health = terminal_health(Terminal.objects.select_related("store").get(sn=SN_A), now())
    assert health.open_alert == first
    assert abs(health.distance_m - 1_068_141) <= 1


def test_a_near_position_raises_none(fleet):
    with assert_nothing_recorded():
        beat = terminal_heartbeat(terminal=fresh(SN_A), location=NEAR, source="device_channel")
    assert beat.alert is None
    assert beat.distance_m == 786
    assert not RelocationAlert.objects.exists()


def test_a_position_whose_accuracy_reaches_the_store_raises_none(fleet):
    # 2.4 km from the store, but only to within 500 m: it may be 1.9 km away.
    place = {"lat": 31.2520, "lon": 121.4737, "accuracy_m": 500}
    beat = terminal_heartbeat(terminal=fresh(SN_A), location=place, source="device_channel")
    assert 2300 < beat.distance_m < 2500
    assert beat.alert is None
    sharp = terminal_heartbeat(terminal=fresh(SN_A), location={**place, "accuracy_m": 20}, source="gateway")
    assert sharp.alert is not None
    assert sharp.alert.accuracy_m == 20


def test_a_store_without_coordinates_raises_none(fleet, world):
    Store.objects.filter(pk=world.store_a.pk).update(latitude=None, longitude=None)
    with assert_nothing_recorded():
        beat = terminal_heartbeat(terminal=fresh(SN_A), location=BEIJING, source="gateway")
    assert (beat.alert, beat.distance_m) == (None, None)
    assert fresh(SN_A).last_location == BEIJING


def test_a_terminal_without_a_store_raises_none(fleet):
    with assert_nothing_recorded():
        beat = terminal_heartbeat(terminal=fresh(SN_B), location=BEIJING, source="gateway")
    assert beat.alert is None
    assert not RelocationAlert.objects.exists()


@override_settings(POSFLEET_RELOCATION_DISTANCE_M=500)
def test_the_distance_is_a_setting(fleet):
    assert terminal_heartbeat(terminal=fresh(SN_A), location=NEAR, source="gateway").alert is not None


def test_the_database_keeps_one_open_alert_per_terminal(fleet):
    alert = terminal_heartbeat(terminal=fresh(SN_A), location=BEIJING, source="gateway").alert
    assert alert is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        RelocationAlert.objects.create(
            terminal=alert.terminal,
            store=alert.store,
            reported_latitude=1,
            reported_longitude=1,
            store_latitude=1,
            store_longitude=1,
            distance_m=1,
            detected_at=now(),
            source="gateway",
        )


# ---------------------------------------------------------------------------------------------
# Relocation alerts: reviewed


@pytest.fixture
def alert(fleet) -> RelocationAlert:
    raised = terminal_heartbeat(terminal=fresh(SN_A), location=BEIJING, source="gateway").alert
    assert raised is not None
    return raised


def test_confirming_a_move_is_audited_and_published(alert, world, actor_of):
    admin = actor_of(world.user("admin"))
    start, outbox = seq(), OutboxMessage.objects.count()
    done = relocation_alert_confirm_moved(actor=admin, alert_id=alert.pk, note="Shop moved to Beijing")
    row = RelocationAlert.objects.get(pk=alert.pk)
    assert (row.status, row.reviewed_by, row.note) == (
        "confirmed_moved",
        world.user("admin"),
        "Shop moved to Beijing",
    )
    assert row.reviewed_at is not None
    assert done.status == "confirmed_moved"
    assert events_since(start) == [EventType.RELOCATION_CONFIRMED]
    audit = AuditEvent.objects.get(seq__gt=start)
    assert (audit.actor_label, audit.subject_id, audit.note, audit.before, audit.after) == (
        "admin",
        SN_A,
        "Shop moved to Beijing",
        {"alert": alert.pk, "alert_status": "open"},
        {"alert": alert.pk, "alert_status": "confirmed_moved", "distance_m": alert.distance_m},
    )
    assert OutboxMessage.objects.count() == outbox + 1
    assert OutboxMessage.objects.order_by("-id").first().payload["status"] == "confirmed_moved"


def test_dismissing_needs_a_note_and_is_audited(alert, world, actor_of):
    admin = actor_of(world.user("admin"))
    with assert_nothing_recorded(alert), pytest.raises(ValidationFailed):
        relocation_alert_dismiss(actor=admin, alert_id=alert.pk, note="  ")
    start = seq()
    relocation_alert_dismiss(actor=admin, alert_id=alert.pk, note="Trade fair in Beijing this week")
    assert RelocationAlert.objects.get(pk=alert.pk).status == "dismissed"
    assert events_since(start) == [EventType.RELOCATION_DISMISSED]


@pytest.mark.parametrize("action", ["confirm_moved", "dismiss"])
def test_a_second_review_is_refused_and_changes_nothing(alert, world, actor_of, action):
    admin = actor_of(world.user("admin"))
    relocation_alert_review(actor=admin, alert_id=alert.pk, action="dismiss", note="GPS glitch")
    reviewed = RelocationAlert.objects.get(pk=alert.pk)
    with assert_nothing_recorded(reviewed), pytest.raises(TransitionNotAllowed) as refused:
        relocation_alert_review(actor=admin, alert_id=alert.pk, action=action, note="again")
    assert refused.value.params["current_status"] == "dismissed"


def test_an_unknown_review_action_is_refused(alert, world, actor_of):
    with assert_nothing_recorded(alert), pytest.raises(ValidationFailed):
        relocation_alert_review(actor=actor_of(world.user("admin")), alert_id=alert.pk, action="ignore")


# Who may review SN_A's alert (merchant A, agent A): 404 for those who may not see the terminal, 403 for
# those who see it but may not review, the admin reviews.
EXPECTED = {
    "admin": "ok",
    "reviewer": 403,
    "warehouse": 403,
    "agent_a": 403,
    "agent_a1": 404,
    "agent_b": 404,
    "merchant_a": 403,
    "merchant_b": 404,
}


@pytest.mark.parametrize("name", PERSONAS)
def test_who_may_review_and_who_may_not_even_see(alert, world, actor_of, name):
    actor = actor_of(world.user(name))
    expected = EXPECTED[name]
    if expected == "ok":
        relocation_alert_confirm_moved(actor=actor, alert_id=alert.pk)
        assert RelocationAlert.objects.get(pk=alert.pk).status == "confirmed_moved"
        return
    error = NotFound if expected == 404 else PermissionDenied
    with assert_nothing_recorded(alert), pytest.raises(error):
        relocation_alert_dismiss(actor=actor, alert_id=alert.pk, note="not mine to say")
    visible = relocation_alerts_visible_to(world.user(name))
    if expected == 404:
        assert not visible.exists()
        with pytest.raises(NotFound):
            relocation_alert_for(world.user(name), alert.pk)
    else:
        assert list(visible) == [alert]


def test_the_system_may_not_review(alert):
    with assert_nothing_recorded(alert), pytest.raises(PermissionDenied):
        relocation_alert_confirm_moved(actor=SYSTEM, alert_id=alert.pk)


def test_after_a_review_the_same_place_raises_nothing_and_a_new_place_does(alert, world, actor_of):
    relocation_alert_confirm_moved(actor=actor_of(world.user("admin")), alert_id=alert.pk)
    near_beijing = {"lat": BEIJING["lat"] + 0.005, "lon": BEIJING["lon"]}  # 556 m from the reviewed place
    assert terminal_heartbeat(terminal=fresh(SN_A), location=near_beijing, source="gateway").alert is None
    assert terminal_heartbeat(terminal=fresh(SN_A), location=NEAR, source="gateway").alert is None
    moved_again = terminal_heartbeat(terminal=fresh(SN_A), location=SUZHOU, source="device_channel").alert
    assert moved_again is not None
    assert list(RelocationAlert.objects.order_by("id").values_list("status", flat=True)) == [
        "confirmed_moved",
        "open",
    ]


# ---------------------------------------------------------------------------------------------
# Online, offline, silent: one definition


def test_connectivity_boundaries():
    at = now()
    assert connectivity(None, at) == Connectivity.NEVER
    assert connectivity(at - ONLINE_WITHIN + timedelta(seconds=1), at) == Connectivity.ONLINE
    assert connectivity(at - ONLINE_WITHIN, at) == Connectivity.OFFLINE
    assert SILENT_AFTER / timedelta(hours=1) == 24
    assert ONLINE_WITHIN / timedelta(minutes=1) == 10


def test_the_silent_list_shows_a_terminal_silent_for_25_hours_and_not_one_seen_an_hour_ago(fleet, world):
    at = now()
    make_terminal(world, "SN-HLT-NEVER-1", Status.ACTIVE, merchant=world.merchant_a)
    make_terminal(world, "SN-HLT-STOCK-1", Status.IN_STOCK)  # not active: never listed
    Terminal.objects.filter(sn=SN_A).update(last_heartbeat_at=at - timedelta(hours=25))
    Terminal.objects.filter(sn=SN_B).update(last_heartbeat_at=at - timedelta(hours=1))
    admin = world.user("admin")
    listed = list(silent_terminals(admin, TerminalFilters(), at).values_list("sn", flat=True))
    assert listed == ["SN-HLT-NEVER-1", SN_A]  # never heard of first
    assert list(silent_terminals(world.user("agent_b"), TerminalFilters(), at)) == []
    assert list(
        silent_terminals(admin, TerminalFilters(q="SN-HLT-NEVER"), at).values_list("sn", flat=True)
    ) == ["SN-HLT-NEVER-1"]
    online = Terminal.objects.filter(online_q(at)).values_list("sn", flat=True)
    assert list(online) == []
    Terminal.objects.filter(sn=SN_B).update(last_heartbeat_at=at - timedelta(minutes=5))
    assert list(Terminal.objects.filter(online_q(at)).values_list("sn", flat=True)) == [SN_B]
