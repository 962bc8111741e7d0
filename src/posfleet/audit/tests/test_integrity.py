"""The daily integrity checks: each run leaves an audit row; a broken ledger or audit chain tells the
provider's admins (and only them) by inbox and e-mail, through a real SMTP server."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection, transaction
from django.test import override_settings

from posfleet.audit.models import AuditEvent
from posfleet.audit.tasks import audit_verify, audit_verify_task
from posfleet.billing.models import AccountKind, JournalKind
from posfleet.billing.services.ledger import Line, merchant_account, post, provider_account
from posfleet.billing.tasks import ledger_verify, ledger_verify_task
from posfleet.config.schedule import JOBS
from posfleet.notifications.models import Channel, Delivery, InboxItem
from posfleet.notifications.services import deliver_due
from posfleet.platform.context import Actor
from posfleet.platform.models import OutboxMessage
from posfleet.platform.outbox import dispatch_outbox
from posfleet.testing.servers import smtp_server

JOB = Actor.job("integrity_verify")


def integrity_verify(*, actor):
    """What the scheduler runs each night: both checks."""
    return [ledger_verify(actor=actor), audit_verify(actor=actor)]


@pytest.fixture
def ledger(world):
    bank = provider_account(AccountKind.BANK_CLEARING)
    payable = merchant_account(world.merchant_a.organisation_id, AccountKind.SETTLEMENT_PAYABLE)
    with transaction.atomic():
        post(
            kind=JournalKind.CAPTURE, reference="capture:int", business_date=date(2026, 11, 20),
            lines=[Line(bank, 1000), Line(payable, -1000)],
        )  # fmt: skip
    for name in ("admin", "reviewer"):
        user = world.user(name)
        user.email = f"{name}@provider.test"
        user.save()
    OutboxMessage.objects.all().delete()
    return world


def checks_recorded() -> list[tuple[str, str, int]]:
    return [
        (e.subject_id, e.outcome, e.after["problems"])
        for e in AuditEvent.objects.filter(event_type="integrity.verified").order_by("seq")
    ]


def test_a_sound_ledger_and_chain_are_recorded_and_nobody_is_bothered(ledger):
    assert ledger_verify_task.call() == {"ok": True, "checked": 1, "problems": 0}
    assert audit_verify_task.call() == {"ok": True, "checked": AuditEvent.objects.count() - 1, "problems": 0}
    assert checks_recorded() == [("ledger", "success", 0), ("audit", "success", 0)]
    assert not OutboxMessage.objects.filter(event_type="integrity.check_failed").exists()


def test_a_broken_ledger_tells_the_admins_and_only_them(ledger):
    with connection.cursor() as cursor:  # what someone with the database's password could do
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the posting's own checks run first
            cursor.execute("ALTER TABLE billing_entry DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS billing_entry_no_update")
        cursor.execute("UPDATE billing_entry SET amount_fen = amount_fen + 1 WHERE amount_fen = 1000")
    outcomes = integrity_verify(actor=JOB)
    assert [(o.check, o.ok) for o in outcomes] == [("ledger", False), ("audit", True)]
    # Nobody outside the provider hears of it: no organisation of the event, so no webhook either.
    assert checks_recorded() == [("ledger", "failure", len(outcomes[0].problems)), ("audit", "success", 0)]
    message = OutboxMessage.objects.get(event_type="integrity.check_failed")
    assert message.payload["check"] == "ledger"
    assert message.payload["first_problem"] == outcomes[0].problems[0]
    assert message.organisation_ids == []  # no agent or merchant is concerned, no webhook is sent

    dispatch_outbox()
    admin = ledger.user("admin")
    assert sorted(Delivery.objects.values_list("channel", "user_id")) == sorted(
        [(Channel.INBOX, admin.pk), (Channel.EMAIL, admin.pk)]
    )  # not the reviewer, the warehouse, agents or merchants
    with smtp_server() as smtp, override_settings(**smtp.settings()):
        assert deliver_due().sent == 2
    (mail,) = smtp.messages
    assert smtp.envelopes[0][1] == ["admin@provider.test"]
    assert mail["Subject"] == "Integrity check failed: ledger"
    assert "Run `posfleet ledger verify` on the server" in mail.get_content()
    assert outcomes[0].problems[0] in mail.get_content()
    assert InboxItem.objects.get(user=admin).title == "Integrity check failed: ledger"


def test_a_broken_audit_chain_is_found_by_the_daily_check(ledger):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        cursor.execute("UPDATE audit_auditevent SET note = 'rewritten' WHERE seq = 2")
    outcomes = integrity_verify(actor=JOB)
    assert [(o.check, o.ok) for o in outcomes] == [("ledger", True), ("audit", False)]
    assert outcomes[1].problems == ["event #2 was altered after it was written"]
    message = OutboxMessage.objects.get(event_type="integrity.check_failed")
    assert (message.payload["check"], message.payload["command"]) == ("audit", "posfleet audit verify")


@pytest.mark.parametrize("task", [ledger_verify_task, audit_verify_task])
def test_the_scheduler_runs_the_checks_daily(task):
    (schedule,) = [when for when, job, _why in JOBS if job is task]
    minute, hour, *every = schedule.split()
    assert minute.isdigit()
    assert hour.isdigit()
    assert every == ["*", "*", "*"]
