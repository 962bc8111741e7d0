"""Issue 4's time-travel scenario: a merchant applies for a terminal, and the clock runs on through
review, shipping, delivery, activation, the T-30, T-7 and T-1 notices, expiry, the grace period,
suspension by the job and renewal. Every sweep runs twice on its day. At the end: the exact ordered
list of what the merchant was told, and of the audit events of the application and its terminal."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from posfleet.audit.models import AuditEvent
from posfleet.audit.verify import verify_chain
from posfleet.billing.verify import verify_ledger
from posfleet.enrollment.services import applications as apps
from posfleet.enrollment.services import fulfilment
from posfleet.enrollment.services.applications import review_remind_sweep
from posfleet.enrollment.services.expiry import expiry_suspend_sweep, expiry_sweep, service_renew
from posfleet.fleet.models import Terminal
from posfleet.fleet.states import Status
from posfleet.notifications.models import InboxItem
from posfleet.notifications.services import deliver_due
from posfleet.platform.context import Actor
from posfleet.platform.outbox import dispatch_outbox
from posfleet.testing.applications import approve, more_terminals_request, stock

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
JOB = Actor.job("scenario")


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=SH)


def jobs(day: date) -> None:
    """The scheduler's sweeps of one day, each run twice, then the worker's dispatch and delivery."""
    with time_machine.travel(at(day, 9), tick=False):
        for _ in range(2):
            expiry_sweep(actor=JOB)
            expiry_suspend_sweep(actor=JOB)
            review_remind_sweep(actor=JOB)
        dispatch_outbox()
        deliver_due()


def test_from_application_to_renewal(world, actor_of):
    start = date(2026, 1, 5)
    with time_machine.travel(at(start - timedelta(days=30)), tick=False):
        stock(world, 1, prefix="SN-LIFE")  # in agent A's stock since December
    merchant, agent = actor_of(world.user("merchant_a")), actor_of(world.user("agent_a"))
    reviewer = actor_of(world.user("reviewer"))
    request = more_terminals_request()

    def on(day: date, step) -> None:
        with time_machine.travel(at(day), tick=False):
            step()
        jobs(day)

    application = None

    def submit() -> None:
        nonlocal application
        application = apps.application_submit(actor=merchant, request=request)

    on(start, submit)
    assert application is not None
    number = application.number
    jobs(start + timedelta(days=2))  # the review is late: the reminder goes once
    on(
        start + timedelta(days=2),
        lambda: approve(reviewer, number, "known merchant"),
    )
    on(start + timedelta(days=3), lambda: fulfilment.application_allocate(actor=agent, number=number))
    on(
        start + timedelta(days=3),
        lambda: fulfilment.application_ship(actor=agent, number=number, carrier="SF", tracking_no="SF777"),
    )
    on(start + timedelta(days=5), lambda: fulfilment.application_deliver(actor=merchant, number=number))
    on(
        start + timedelta(days=6),
        lambda: fulfilment.application_install(actor=agent, number=number, sn="SN-LIFE-0001"),
    )
    on(
        start + timedelta(days=6),
        lambda: fulfilment.application_test(
            actor=agent, number=number, sn="SN-LIFE-0001", checks=dict.fromkeys(fulfilment.CHECKS, True)
        ),
    )

    terminal = Terminal.objects.get(sn="SN-LIFE-0001")
    expires = terminal.service_expires_on
    assert terminal.status == Status.ACTIVE
    assert expires == date(2027, 1, 11)  # the contract's 12 months from installation

    for days_before in (30, 29, 7, 6, 1, 0):
        jobs(expires - timedelta(days=days_before))
    for days_after in (1, 14, 15, 16):
        jobs(expires + timedelta(days=days_after))
    assert Terminal.objects.get(pk=terminal.pk).status == Status.SUSPENDED
    renewal_day = expires + timedelta(days=20)
    on(renewal_day, lambda: service_renew(actor=merchant, sn="SN-LIFE-0001"))
    assert Terminal.objects.get(pk=terminal.pk).status == Status.ACTIVE
    jobs(renewal_day + timedelta(days=1))

    told = list(
        InboxItem.objects.filter(delivery__user=world.user("merchant_a"))
        .order_by("delivery__message__occurred_at", "delivery__message_id")
        .values_list("delivery__notice", flat=True)
    )
    assert told == [
        "application.submitted",
        "application.approved",
        "application.shipped",
        "terminal.bound",
        "terminal.activated",
        "application.completed",
        "service.expiring",  # 30 days before
        "service.expiring",  # 7 days before
        "service.expiring_tomorrow",
        "service.expired",
        "terminal.suspended",
        "terminal.resumed",  # the renewal resumes it, then says until when it runs
        "service.renewed",
    ]
    staff = list(
        InboxItem.objects.filter(delivery__user=world.user("reviewer"))
        .order_by("delivery__message_id")
        .values_list("delivery__notice", flat=True)
    )
    assert staff == ["application.submitted", "application.review_reminded"]

    application_trail = list(
        AuditEvent.objects.filter(subject_type="application", subject_id=number)
        .order_by("seq")
        .values_list("event_type", flat=True)
    )
    assert application_trail == [
        "application.submitted",
        "application.review_reminded",
        "application.approved",
        "application.allocated",
        "application.shipped",
        "application.delivered",
        "application.installed",
        "application.tested",
        "application.completed",
    ]
    terminal_trail = list(
        AuditEvent.objects.filter(
            subject_type="terminal", subject_id="SN-LIFE-0001", occurred_at__gte=at(start, 0)
        )
        .order_by("seq")
        .values_list("event_type", "actor_label")
    )
    assert terminal_trail == [
        ("terminal.shipped", "agent_a"),
        ("terminal.bound", "agent_a"),
        ("terminal.activated", "agent_a"),
        ("terminal.service_extended", f"application:{number}"),
        ("terminal.suspended", "scenario"),  # the job, after the 15 days of grace
        ("terminal.service_extended", "merchant_a"),
        ("terminal.resumed", "service_renew"),
        ("service.renewed", "merchant_a"),
    ]
    verify_chain()
    verify_ledger()
