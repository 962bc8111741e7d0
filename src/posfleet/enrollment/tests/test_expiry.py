"""Service expiry: notices at T-30, T-7 and T-1 exactly once, a grace period, suspension by the job,
renewal through the ledger; sweeps that run twice (or late) send nothing twice."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
import time_machine
from django.utils import timezone

from posfleet.audit.models import AuditEvent
from posfleet.billing.models import AccountKind, ServiceContract, ServiceFeeDue
from posfleet.billing.verify import verify_ledger
from posfleet.enrollment.models import ExpiryMilestone
from posfleet.enrollment.services.expiry import (
    Window,
    expiry_suspend_sweep,
    expiry_sweep,
    service_renew,
    windows,
)
from posfleet.fleet.models import Terminal
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Command, Status
from posfleet.notifications.models import InboxItem
from posfleet.notifications.services import deliver_due
from posfleet.platform.context import Actor
from posfleet.platform.errors import GuardFailed, NotFound, PermissionDenied, ValidationFailed
from posfleet.platform.models import OutboxMessage
from posfleet.platform.outbox import dispatch_outbox
from posfleet.testing.money import balance, signed_contract
from posfleet.testing.personas import make_terminal
from posfleet.testing.refusals import assert_nothing_recorded

pytestmark = pytest.mark.django_db

JOB = Actor.job("test-expiry")
START = date(2026, 3, 1)
EXPIRES = date(2026, 4, 30)


def at(day: date, hour: int = 9) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


@pytest.fixture
def expiring(world):
    """SN-E-1, merchant A's, active under a contract with a ¥99 annual fee, service until EXPIRES."""
    with time_machine.travel(at(START), tick=False):
        terminal = make_terminal(world, "SN-E-1", Status.ACTIVE)
        signed_contract(terminal, deposit_fen=0, starts_on=date(2025, 5, 1))
        Terminal.objects.filter(pk=terminal.pk).update(service_expires_on=EXPIRES)
        make_terminal(world, "SN-STOCK", Status.IN_STOCK)  # never told: not with a merchant
        Terminal.objects.filter(sn="SN-STOCK").update(service_expires_on=EXPIRES)
    OutboxMessage.objects.all().delete()
    return world


def sweep_day(day: date, *, twice: bool = False) -> None:
    with time_machine.travel(at(day), tick=False):
        for _ in range(2 if twice else 1):
            expiry_sweep(actor=JOB)
            expiry_suspend_sweep(actor=JOB)
        dispatch_outbox()
        deliver_due()


def test_the_windows_of_a_day():
    day = date(2026, 5, 10)
    assert windows(day) == [
        Window("t30", date(2026, 5, 18), date(2026, 6, 9)),
        Window("t7", date(2026, 5, 12), date(2026, 5, 17)),
        Window("t1", date(2026, 5, 11), date(2026, 5, 11)),
        Window("expired", date(2026, 4, 25), date(2026, 5, 9)),
    ]


def test_from_the_first_notice_to_suspension_and_renewal(expiring):
    """Day by day from 1 March to mid-May, every sweep run twice: the exact notices, in order."""
    day = START
    while day <= EXPIRES + timedelta(days=17):
        sweep_day(day, twice=True)
        day += timedelta(days=1)
    milestones = list(
        ExpiryMilestone.objects.order_by("reached_on", "id").values_list("milestone", "reached_on")
    )
    assert milestones == [
        ("t30", EXPIRES - timedelta(days=30)),
        ("t7", EXPIRES - timedelta(days=7)),
        ("t1", EXPIRES - timedelta(days=1)),
        ("expired", EXPIRES + timedelta(days=1)),
        ("suspended", EXPIRES + timedelta(days=16)),  # 15 days of grace, then the job
    ]
    inbox = list(
        InboxItem.objects.filter(user=expiring.user("merchant_a"))
        .order_by("created_at", "id")
        .values_list("title", flat=True)
    )
    tid = Terminal.objects.get(sn="SN-E-1").tid
    assert inbox == [
        f"Service of terminal {tid} expires in 30 days",
        f"Service of terminal {tid} expires in 7 days",
        f"Service of terminal {tid} expires tomorrow",
        f"Service of terminal {tid} has expired",
        f"Terminal {tid} is suspended",
    ]
    expired_body = InboxItem.objects.get(
        user=expiring.user("merchant_a"), title=f"Service of terminal {tid} has expired"
    ).body
    assert "will be suspended on 16 May 2026" in expired_body  # the reader's (English) date format
    terminal = Terminal.objects.get(sn="SN-E-1")
    assert (terminal.status, terminal.status_reason) == ("suspended", "expiry")
    suspension = AuditEvent.objects.get(event_type="terminal.suspended")
    assert (suspension.actor_kind, suspension.actor_label, suspension.reason) == (
        "job",
        "test-expiry",
        "expiry",
    )
    # The agent heard of the expiry and the suspension, in its inbox.
    agent_titles = set(
        InboxItem.objects.filter(user=expiring.user("agent_a")).values_list("title", flat=True)
    )
    assert agent_titles == {f"Service of terminal {tid} has expired", f"Terminal {tid} is suspended"}
    assert not ExpiryMilestone.objects.filter(terminal__sn="SN-STOCK").exists()

    # Renewal by the merchant: the fee through the ledger, a year more, the terminal back in service.
    org = expiring.merchant_a.organisation_id
    owed = balance(org, AccountKind.FEES_RECEIVABLE)
    with time_machine.travel(at(EXPIRES + timedelta(days=18)), tick=False):
        renewal = service_renew(actor=Actor.for_user(expiring.user("merchant_a")), sn="SN-E-1")
        dispatch_outbox()
        deliver_due()
    assert (renewal.previous_expires_on, renewal.expires_on, renewal.fee_fen, renewal.resumed) == (
        EXPIRES,
        date(2027, 4, 30),
        9900,
        True,
    )
    terminal.refresh_from_db()
    assert (terminal.status, terminal.service_expires_on) == ("active", date(2027, 4, 30))
    assert balance(org, AccountKind.FEES_RECEIVABLE) == owed + 9900
    fee = ServiceFeeDue.objects.get(due_on=EXPIRES + timedelta(days=18))
    assert fee.journal is not None
    assert verify_ledger().ok
    renewed = InboxItem.objects.get(title=f"Service of terminal {tid} renewed")
    assert "runs until 30 Apr 2027" in renewed.body
    assert "renewal fee of ¥99.00 fell due on 18 May 2026" in renewed.body  # the fee and its day
    trail = AuditEvent.objects.filter(subject_id="SN-E-1").order_by("seq")
    assert [(e.event_type, e.actor_label) for e in trail][-3:] == [
        ("terminal.service_extended", "merchant_a"),
        ("terminal.resumed", "service_renew"),
        ("service.renewed", "merchant_a"),
    ]
    assert AuditEvent.objects.filter(event_type="service_fee.charged", subject_id=str(fee.pk)).exists()
    # The new expiry starts a new cycle of notices.
    sweep_day(date(2027, 3, 31))
    assert ExpiryMilestone.objects.filter(expires_on=date(2027, 4, 30)).count() == 1


def test_a_late_sweep_catches_up_with_the_latest_milestone_only(expiring):
    sweep_day(EXPIRES - timedelta(days=20))  # first run ever, 20 days before
    sweep_day(EXPIRES - timedelta(days=3))  # missed the 7-day day: sends it now
    sweep_day(EXPIRES + timedelta(days=3))  # missed the day before and the day after
    rows = list(ExpiryMilestone.objects.values_list("milestone", flat=True).order_by("id"))
    assert rows == ["t30", "t7", "expired"]
    days_left = [
        m.payload["days_left"]
        for m in OutboxMessage.objects.filter(event_type="service.expiry_milestone").order_by("id")
    ]
    assert days_left == [20, 3, -3]


def test_two_sweeps_of_a_day_record_and_announce_once(expiring):
    day = EXPIRES - timedelta(days=7)
    with time_machine.travel(at(day), tick=False):
        first = expiry_sweep(actor=JOB)
        second = expiry_sweep(actor=JOB)
    assert (first.total, second.total) == (1, 0)
    assert OutboxMessage.objects.filter(event_type="service.expiry_milestone").count() == 1
    assert AuditEvent.objects.filter(event_type="expiry.sweep").count() == 1  # an empty sweep leaves nothing


def test_a_terminal_resumed_by_hand_is_not_suspended_again_for_the_same_expiry(expiring):
    sweep_day(EXPIRES + timedelta(days=16))
    assert Terminal.objects.get(sn="SN-E-1").status == "suspended"
    with time_machine.travel(at(EXPIRES + timedelta(days=17)), tick=False):
        terminal_transition(actor=Actor.system("staff"), sn="SN-E-1", action=Command.RESUME)
    sweep_day(EXPIRES + timedelta(days=18))
    assert Terminal.objects.get(sn="SN-E-1").status == "active"


def test_renewal_refusals_change_nothing(expiring, world):
    make_terminal(world, "SN-NOCONTRACT", Status.ACTIVE)
    merchant_a = Actor.for_user(world.user("merchant_a"))
    refusals = [
        (Actor.for_user(world.user("merchant_b")), "SN-E-1", {}, NotFound),  # not theirs: does not exist
        (Actor.for_user(world.user("agent_b")), "SN-E-1", {}, NotFound),
        (Actor.for_user(world.user("reviewer")), "SN-E-1", {}, PermissionDenied),  # may see, not renew
        (Actor(kind="token", user=world.user("merchant_a"), read_only=True), "SN-E-1", {}, PermissionDenied),
        (merchant_a, "SN-E-1", {"years": 9}, ValidationFailed),
        (merchant_a, "SN-NOCONTRACT", {}, GuardFailed),
    ]
    for actor, sn, options, error in refusals:
        with (
            assert_nothing_recorded(
                Terminal.objects.filter(sn__in=["SN-E-1", "SN-NOCONTRACT"]),
                ServiceContract.objects.all(),
                ServiceFeeDue.objects.all(),
                ExpiryMilestone.objects.all(),
            ),
            pytest.raises(error),
        ):
            service_renew(actor=actor, sn=sn, **options)
    assert Terminal.objects.get(sn="SN-E-1").service_expires_on == EXPIRES
    assert verify_ledger().ok


def test_the_agent_renews_for_its_merchant(expiring, world):
    renewal = service_renew(actor=Actor.for_user(world.user("agent_a")), sn="SN-E-1", years=2)
    assert (renewal.expires_on, renewal.fee_fen, renewal.resumed) == (date(2028, 4, 30), 19800, False)
