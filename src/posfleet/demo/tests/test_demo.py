"""The demo fleet: every state present, rows consistent with their history, the chain verifies,
same options give the same fleet, --if-empty does nothing the second time."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from posfleet.audit.models import AuditEvent
from posfleet.audit.verify import verify_chain
from posfleet.audit.vocabulary import EventType
from posfleet.demo.build import build_demo
from posfleet.demo.plan import make_plan, replay
from posfleet.fleet.geo import distance_m
from posfleet.fleet.models import RelocationAlert, Terminal
from posfleet.fleet.selectors import tally_differences
from posfleet.fleet.states import Status
from posfleet.iam.models import Role, User
from posfleet.parties.models import Agent, Merchant, Store
from posfleet.testing.refusals import assert_nothing_recorded
from posfleet.testing.totp import DEMO_TOTP_SECRET, hex_key

TODAY = date(2026, 11, 23)
# The fleet alone (its money is test_demo_money.py's).
SMALL = {"agents": 2, "merchants": 20, "terminals": 300, "seed": 4242, "today": TODAY, "money_days": 0}
HOLDS_TID = {
    Status.BOUND,
    Status.ACTIVE,
    Status.SUSPENDED,
    Status.DEACTIVATED,
    Status.DEREGISTERED,
    Status.RETURNED,
    Status.SCRAPPED,
}


@pytest.fixture
def demo(db):
    return build_demo(**SMALL)


def test_small_demo_fleet(demo):
    """One build (a second of work), every property checked on it."""
    check_every_state_is_present_in_realistic_shares(demo)
    check_the_chain_verifies(demo)
    check_each_terminal_ends_where_its_history_leads(demo)
    check_rows_are_what_the_services_would_leave(demo)
    check_most_deactivated_terminals_are_within_the_reactivation_window(demo)
    check_history_is_in_time_order(demo)
    check_expiry_dates_spread_with_some_in_the_next_30_days(demo)
    check_demo_users(demo)
    check_stores_have_coordinates_and_some_terminals_moved(demo)
    check_active_terminals_have_a_master_key(demo)
    assert tally_differences() == {}  # the fleet's counters followed the demo's bulk rows (ADR 0034)


def check_active_terminals_have_a_master_key(demo):
    """The gateway's terminal simulator signs on as the demo's terminals: each active one has a key."""
    from posfleet.fleet.models import TerminalKey

    live = set(TerminalKey.objects.filter(revoked_at__isnull=True).values_list("terminal_id", flat=True))
    active = set(Terminal.objects.filter(status=Status.ACTIVE).values_list("pk", flat=True))
    assert active
    assert live == active
    assert demo.keys == len(active)


def fleet_snapshot():
    """Everything about the fleet that does not depend on database ids."""
    terminals = list(
        Terminal.objects.order_by("sn").values_list(
            "sn",
            "status",
            "tid",
            "agent__code",
            "merchant__mid",
            "store__code",
            "model__code",
            "sim_iccid",
            "service_expires_on",
            "firmware_version",
            "status_reason",
            "status_changed_at",
            "deactivated_at",
            "import_batch",
        )
    )
    events = [
        (*row[:-2], _without_ids(row[-2]), _without_ids(row[-1]))
        for row in AuditEvent.objects.order_by("seq")
        .exclude(subject_type="user")
        .values_list(
            "occurred_at", "event_type", "actor_label", "subject_id", "reason", "note", "before", "after"
        )
    ]
    return terminals, events


# Database ids an event names (a relocation alert, a device command): PostgreSQL's sequences do not
# go back when a build is rolled back, so a second build numbers them on.
IDS = ("alert", "command")


def _without_ids(facts: dict) -> dict:
    return {key: value for key, value in facts.items() if key not in IDS}


def test_the_command_is_posfleets():
    assert get_commands()["demo"] == "posfleet.demo"


def check_every_state_is_present_in_realistic_shares(demo):
    counts = Counter(Terminal.objects.values_list("status", flat=True))
    assert set(counts) == set(Status.values)
    assert sum(counts.values()) == 300
    assert counts[Status.ACTIVE] == max(counts.values())
    assert demo.statuses == {s.value: counts[s.value] for s in Status}
    assert (Agent.objects.count(), Merchant.objects.count()) == (2, 20)
    assert Store.objects.count() >= 20


def check_the_chain_verifies(demo):
    result = verify_chain()
    assert result.ok, result.problem
    assert result.checked == AuditEvent.objects.count() == demo.audit_events


def check_each_terminal_ends_where_its_history_leads(demo):
    latest = {}
    for event in AuditEvent.objects.filter(subject_type="terminal").order_by("seq"):
        if "status" in event.after:  # a move of its life (not a device's report, e.g. a relocation alert)
            latest[event.subject_id] = event
    imports = {e.subject_id: e for e in AuditEvent.objects.filter(event_type=EventType.TERMINALS_IMPORTED)}
    terminals = Terminal.objects.select_related("agent", "merchant", "store")
    for terminal in terminals:
        assert terminal.import_batch in imports
        batch = imports[terminal.import_batch].after
        assert batch["first_sn"] <= terminal.sn <= batch["last_sn"]
        event = latest.get(terminal.sn)
        if event is None:  # delivered and never moved
            assert terminal.status == Status.IN_STOCK
            assert terminal.status_changed_at is None
            continue
        assert event.after["status"] == terminal.status, terminal.sn
        assert event.after["tid"] == terminal.tid
        assert event.after["agent"] == (terminal.agent.code if terminal.agent else None)
        assert event.after["merchant"] == (terminal.merchant.mid if terminal.merchant else None)
        assert event.after["store"] == (terminal.store.code if terminal.store else None)
        assert event.reason == terminal.status_reason
        assert event.occurred_at == terminal.status_changed_at


def check_rows_are_what_the_services_would_leave(demo):
    for terminal in Terminal.objects.all():
        status = Status(terminal.status)
        if status in HOLDS_TID:
            assert terminal.tid is not None
            assert len(terminal.tid) == 8
            assert terminal.merchant_id is not None
            assert terminal.store_id is not None
        if status in {Status.IN_STOCK, Status.ALLOCATED, Status.SHIPPED}:
            assert terminal.tid is None
            assert terminal.merchant_id is None
        if status == Status.IN_STOCK:
            assert terminal.agent_id is None
        if status in {Status.ALLOCATED, Status.SHIPPED} | HOLDS_TID:
            assert terminal.agent_id is not None
        if status == Status.DEACTIVATED:
            assert terminal.deactivated_at == terminal.status_changed_at
        if status in {Status.ACTIVE, Status.DEREGISTERED, Status.RETURNED, Status.SCRAPPED}:
            assert terminal.deactivated_at is None
        if status == Status.SUSPENDED and terminal.status_reason == "expiry":
            assert terminal.service_expires_on < TODAY
        if terminal.merchant_id is not None:
            assert terminal.merchant.agent.organisation.path.startswith(terminal.agent.organisation.path)
    tids = [t for t in Terminal.objects.values_list("tid", flat=True) if t]
    assert len(tids) == len(set(tids))


def check_stores_have_coordinates_and_some_terminals_moved(demo):
    """Every store has WGS-84 coordinates in China; smart terminals report positions near their store,
    except the few whose last heartbeat raised an open relocation alert (the real service did)."""
    for latitude, longitude in Store.objects.values_list("latitude", "longitude"):
        assert 18 < latitude < 54
        assert 73 < longitude < 135
    alerts = list(RelocationAlert.objects.select_related("terminal", "store"))
    assert 1 <= len(alerts) <= 3
    raised = AuditEvent.objects.filter(event_type=EventType.RELOCATION_ALERT_RAISED)
    assert sorted(raised.values_list("subject_id", flat=True)) == sorted(a.terminal.sn for a in alerts)
    for alert in alerts:
        assert alert.status == "open"
        assert alert.distance_m > 2000
        assert (alert.store_latitude, alert.store_longitude) == (alert.store.latitude, alert.store.longitude)
        assert alert.terminal.last_heartbeat_at == alert.detected_at
    moved = {a.terminal_id for a in alerts}
    located = Terminal.objects.filter(last_location__isnull=False).select_related("store")
    assert located.exists()
    for terminal in located.exclude(pk__in=moved):
        place = terminal.last_location
        assert distance_m(place["lat"], place["lon"], terminal.store.latitude, terminal.store.longitude) < 200


def check_most_deactivated_terminals_are_within_the_reactivation_window(demo):
    stamps = Terminal.objects.filter(status="deactivated").values_list("deactivated_at", flat=True)
    ages = [(TODAY - at.date()).days for at in stamps]
    assert ages
    assert all(age >= 1 for age in ages)
    within = sum(1 for age in ages if age <= 90)
    assert within > len(ages) / 2  # most may still be reactivated
    assert within < len(ages) or len(ages) < 5  # and a few are past the window


def check_history_is_in_time_order(demo):
    times = list(AuditEvent.objects.order_by("seq").values_list("occurred_at", flat=True))
    assert times == sorted(times)
    assert times[0].date() >= TODAY - timedelta(days=731)
    assert times[-1].date() < TODAY


def check_expiry_dates_spread_with_some_in_the_next_30_days(demo):
    active = Terminal.objects.filter(status="active")
    soon = active.filter(service_expires_on__range=(TODAY, TODAY + timedelta(days=30))).count()
    later = active.filter(service_expires_on__gt=TODAY + timedelta(days=365)).count()
    assert soon > 0
    assert later > 0
    assert demo.expiring_30_days >= soon


def check_demo_users(demo):
    admin = User.objects.get(username="admin")
    assert (admin.role, admin.is_superuser, admin.is_staff, admin.language) == (
        Role.ADMIN,
        True,
        True,
        "zh-hans",
    )
    expected = {"admin", "reviewer", "warehouse", "agent1", "agent2"} | {f"merchant{n}" for n in range(1, 6)}
    assert set(User.objects.values_list("username", flat=True)) == expected
    for user in User.objects.all():
        assert user.check_password("posfleet-demo")
        assert user.language == "zh-hans"
        device = TOTPDevice.objects.get(user=user)
        assert device.confirmed
        assert device.key == hex_key(DEMO_TOTP_SECRET)
    agent1 = User.objects.get(username="agent1")
    top = Agent.objects.get(organisation=agent1.organisation)
    assert top.level == 1
    merchant1 = Merchant.objects.get(organisation=User.objects.get(username="merchant1").organisation)
    assert merchant1.agent.organisation.path.startswith(top.organisation.path)
    assert Terminal.objects.filter(merchant=merchant1).exists()
    created = AuditEvent.objects.filter(event_type=EventType.USER_CREATED).count()
    assert created == len(expected)


def test_same_options_same_fleet(db):
    """Two builds on the same empty database (the first rolled back) give the same fleet and history."""

    class Undo(Exception):
        pass

    try:
        with transaction.atomic():
            build_demo(**SMALL)
            first = fleet_snapshot()
            raise Undo
    except Undo:
        pass
    assert not Terminal.objects.exists()
    assert not AuditEvent.objects.exists()
    build_demo(**SMALL)
    assert fleet_snapshot() == first
    assert len(first[0]) == 300


def test_plan_is_pure_and_follows_the_transition_table():
    one = make_plan(agents=20, merchants=200, terminals=2000, seed=1, today=TODAY)
    two = make_plan(agents=20, merchants=200, terminals=2000, seed=1, today=TODAY)
    assert [(t.sn, t.final, t.steps) for t in one.terminals] == [
        (t.sn, t.final, t.steps) for t in two.terminals
    ]
    assert all(replay(t) == t.final for t in one.terminals)
    assert len({t.sn for t in one.terminals}) == 2000
    assert sum(1 for a in one.agents if a.parent is None) == 5
    other = make_plan(agents=20, merchants=200, terminals=2000, seed=2, today=TODAY)
    assert [t.sn for t in other.terminals] != [t.sn for t in one.terminals]


def test_if_empty_is_a_no_op_the_second_time(db):
    options = ["--agents", "2", "--merchants", "10", "--terminals", "40", "--today", TODAY.isoformat()]
    options += ["--money-days", "0"]
    call_command("demo", *options, "--if-empty", stdout=_Sink())
    assert Terminal.objects.count() == 40
    built = (Terminal.objects.all(), User.objects.all(), Merchant.objects.all(), Agent.objects.all())
    out = _Sink()
    with assert_nothing_recorded(*built):
        call_command("demo", *options, "--if-empty", stdout=out)
    assert "nothing done" in out.text
    with assert_nothing_recorded(*built), pytest.raises(CommandError, match="not empty"):
        call_command("demo", *options, stdout=_Sink())


def test_summary_output(db):
    out = _Sink()
    call_command(
        "demo", "--agents", "3", "--merchants", "10", "--terminals", "50", "--money-days", "0", stdout=out
    )
    assert "Demo logins" in out.text
    assert "posfleet-demo" in out.text
    assert "JBSWY3DPEHPK3PXP" in out.text


def test_too_small_a_fleet_is_refused(db):
    empty = (Terminal.objects.all(), User.objects.all(), Merchant.objects.all(), Agent.objects.all())
    with assert_nothing_recorded(*empty), pytest.raises(CommandError, match="at least"):
        call_command("demo", "--terminals", "5", stdout=_Sink())
    assert not Terminal.objects.exists()


class _Sink:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False
