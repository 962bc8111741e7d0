"""Closure notices (closure.progressed) from real journeys, fanned out and delivered over real SMTP:
each party hears exactly its notices, in order, in its own language.

- The merchant (its user reads Chinese) hears its case's milestones and each step that matters to it,
  with the return instructions, the refund and the certificate's code; by e-mail and in its inbox.
- The agent (English) hears the request, the decision, the end and the escalations, in its inbox.
- The provider's reviewers (English) hear what waits for review; the admins (Chinese) what went wrong
  (a late review, a device not returned, a step that needs a person), by e-mail too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import override_settings
from django.utils import formats, translation

from posfleet.billing.services.settlement import settlement_run
from posfleet.billing.services.transactions import transactions_ingest
from posfleet.billing.tests.test_transactions import txn
from posfleet.closure import backup as backups
from posfleet.closure.models import ClosureCase
from posfleet.closure.runner import advance
from posfleet.closure.services import (
    closure_decide,
    closure_inspect,
    closure_quote,
    closure_receive,
    closure_request,
    closure_step_retry,
    complaint_acknowledge,
    complaint_escalate,
    complaint_raise,
    review_remind_sweep,
)
from posfleet.closure.tests.conftest import closable, person, request_and_approve
from posfleet.notifications.models import Delivery, InboxItem
from posfleet.notifications.notices import WORDS
from posfleet.notifications.services import deliver_due
from posfleet.parties.services import channel_bind
from posfleet.platform.context import Actor
from posfleet.platform.models import OutboxMessage
from posfleet.platform.outbox import dispatch_outbox
from posfleet.testing.personas import SYSTEM, World
from posfleet.testing.servers import ChannelSimulator, SmtpCatcher, channel_simulator, smtp_server

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
ZH, EN = "zh-hans", "en"
OWNER, SALES, REVIEWER, ADMIN = (
    "owner@shop-a.test",
    "sales@agent-a.test",
    "review@provider.test",
    "ops@provider.test",
)
ADDRESS = "posfleet returns warehouse, 88 Zhangjiang Road, Pudong, Shanghai 201203"


def at(day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def quick_statements(monkeypatch):
    """The data backup's monthly statements as a few bytes (the PDFs are not under test here)."""
    monkeypatch.setattr(
        backups, "statement_pdf", lambda merchant, month: f"%PDF {merchant.mid} {month}".encode()
    )


@pytest.fixture
def people(world: World) -> World:
    """E-mail addresses and languages: the merchant's user and the admin read Chinese, the others English."""
    for name, email, language in (
        ("merchant_a", OWNER, ZH),
        ("agent_a", SALES, EN),
        ("reviewer", REVIEWER, EN),
        ("admin", ADMIN, ZH),
    ):
        user = world.user(name)
        user.email, user.language = email, language
        user.save()
    return world


@pytest.fixture
def channels(settings) -> Iterator[ChannelSimulator]:
    with channel_simulator(delay=1.5) as simulator:
        settings.POSFLEET_CHANNELS_URL = simulator.url
        settings.POSFLEET_CHANNELS_TIMEOUT = 0.5
        yield simulator


def deliver() -> SmtpCatcher:
    """Fan every event out and deliver every notice over a real SMTP server; nothing fails."""
    dispatch_outbox()
    with smtp_server() as smtp, override_settings(**smtp.settings()):
        run = deliver_due()
        assert (run.failed, run.dead) == (0, 0)
        assert deliver_due().sent == 0  # nothing twice
    return smtp


def words(key: str, language: str, **values: object) -> str:
    """The subject of notice ``key`` in ``language`` (the catalogue's words, whatever is translated)."""
    with translation.override(language):
        return str(WORDS[key].subject) % {k: str(v) for k, v in values.items()}


def day(value: date, language: str) -> str:
    """A date as a reader of ``language`` reads it (the locale's date format)."""
    with translation.override(language):
        return formats.date_format(value, "DATE_FORMAT")


def mails_to(smtp: SmtpCatcher, address: str) -> list[str]:
    return [
        m["Subject"]
        for (_s, rcpts), m in zip(smtp.envelopes, smtp.messages, strict=True)
        if rcpts == [address]
    ]


def body_to(smtp: SmtpCatcher, address: str, subject: str) -> str:
    for (_s, rcpts), m in zip(smtp.envelopes, smtp.messages, strict=True):
        if rcpts == [address] and m["Subject"] == subject:
            return str(m.get_content())
    raise AssertionError(subject)


def inbox(world: World, name: str) -> list[str]:
    return list(
        InboxItem.objects.filter(user=world.user(name)).order_by("id").values_list("title", flat=True)
    )


def test_a_journey_to_the_certificate_tells_each_party_its_part(people: World) -> None:
    world = people
    with time_machine.travel(at(6, 9), tick=False) as clock:
        setup = closable(world)
        results = transactions_ingest(
            actor=Actor.job("ingest"),
            items=[txn(setup.terminal, 1, 100_000, day=date(2026, 12, 6), occurred_at=at(6, 9, 30))],
        )
        assert all(r.ok for r in results)
        Delivery.objects.all().delete()
        OutboxMessage.objects.all().delete()  # the setup's own events are not under test
        clock.move_to(at(6, 10))
        case = request_and_approve(setup)
        clock.move_to(at(7, 3))
        settlement_run(actor=Actor.job("settle"), business_date=date(2026, 12, 6))
        advance(case.pk)
        clock.move_to(at(9))
        closure_receive(actor=person(world, "warehouse"), sn=setup.terminal.sn)
        closure_inspect(
            actor=person(world, "warehouse"),
            sn=setup.terminal.sn,
            grade="B",
            human_damage=True,
            note="cracked screen",
            disposal="refurbish",
        )
        advance(case.pk)
        case.refresh_from_db()
        assert case.status == "completed"
        smtp = deliver()

    n, sn, code = case.number, setup.terminal.sn, case.certificate_code
    reference, due = f"R-{n}", day(date(2026, 12, 21), ZH)  # 2026年12月21日
    merchant = [
        words("closure.requested", ZH, number=n),
        words("closure.approved", ZH, number=n),
        words("closure.contract_ended", ZH, number=n),
        words("closure.settled", ZH, number=n),
        words("closure.backup_ready", ZH, number=n),
        words("closure.wiped", ZH, number=n),
        words("closure.return_instructions", ZH, number=n, return_due_on=due),
        words("closure.inspected", ZH, number=n),
        words("closure.refunded", ZH, number=n, refund="¥189.00"),
        words("closure.certificate_ready", ZH, number=n),
    ]
    assert mails_to(smtp, OWNER) == merchant
    assert inbox(world, "merchant_a") == merchant
    assert inbox(world, "agent_a") == [
        f"Closure {n} requested",
        f"Closure {n} approved",
        f"Closure {n} completed",
    ]
    assert inbox(world, "reviewer") == [f"Closure {n} requested"]
    assert inbox(world, "admin") == [words("closure.requested", ZH, number=n)]
    assert {rcpts[0] for _s, rcpts in smtp.envelopes} == {OWNER}  # the others hear it in their inbox

    with translation.override(ZH):
        reason = translation.gettext("shop closed")
    requested = InboxItem.objects.get(user=world.user("reviewer"), title=f"Closure {n} requested").body
    assert requested == (
        f"The closure of terminal(s) {sn} of Shop A (MID 100000000000001) was requested on 6 Dec 2026 "
        "10:00. Reason: shop closed. The terminals no longer take payments; the request is reviewed by "
        "13 Dec 2026 10:00, and it can be withdrawn until then."
    )
    assert f"{reason}" in body_to(smtp, OWNER, merchant[0])
    assert "2026年12月13日 10:00" in body_to(smtp, OWNER, merchant[0])  # the review deadline, in Chinese
    # Each notice states its dates and amounts, in the reader's (Chinese) formats.
    for index, facts in (
        (2, [day(date(2026, 12, 6), ZH), "¥60.00", "¥159.00"]),  # ended; penalty; owed (fee + penalty)
        (3, ["¥895.00", day(date(2026, 12, 7), ZH)]),  # 1,000.00 − 6.00 MDR − 99.00 fee, paid on the 7th
        (6, [ADDRESS, reference, due, sn]),  # return the device to … by …
        (7, [f"{sn}: B", "¥50.00"]),  # the grade, the damage charged
        (8, ["¥189.00", day(date(2026, 12, 9), ZH)]),  # the refund, and the day it is paid
        (9, [code]),
    ):
        body = body_to(smtp, OWNER, merchant[index])
        for fact in facts:
            assert fact in body, (merchant[index], fact, body)
        assert "—" not in body, body  # every fact has its value
    assert code in InboxItem.objects.get(user=world.user("agent_a"), title=f"Closure {n} completed").body


def test_review_reminded_then_late_then_rejected(people: World) -> None:
    world = people
    with time_machine.travel(at(6), tick=False) as clock:
        setup = closable(world)
        OutboxMessage.objects.all().delete()
        requester = person(world, "merchant_a")
        quote = closure_quote(actor=requester, sns=[setup.terminal.sn]).quote
        case = closure_request(
            actor=requester, sns=[setup.terminal.sn], reason="cost", quote_digest=quote.digest
        )
        clock.move_to(at(12, 11))  # due within a day (the 13th, 10:00): the reviewers are reminded
        assert review_remind_sweep(actor=SYSTEM) == {"reminded": 1, "escalated": 0}
        clock.move_to(at(13, 11))  # past the clock: escalated to the agent and the admins
        assert review_remind_sweep(actor=SYSTEM) == {"reminded": 0, "escalated": 1}
        assert review_remind_sweep(actor=SYSTEM) == {"reminded": 0, "escalated": 0}  # once each
        closure_decide(
            actor=person(world, "reviewer"), number=case.number, decision="reject", note="open dispute"
        )
        smtp = deliver()

    n, tid = case.number, setup.terminal.tid
    merchant = [
        words("closure.requested", ZH, number=n),
        words("terminal.reactivated", ZH, tid=tid),  # the terminal takes payments again, then
        words("closure.rejected", ZH, number=n),
    ]
    assert mails_to(smtp, OWNER) == merchant
    assert inbox(world, "merchant_a") == merchant
    assert inbox(world, "agent_a") == [
        f"Closure {n} requested",
        f"Closure {n}: review is late",
        f"Closure {n} rejected",
    ]
    assert inbox(world, "reviewer") == [f"Closure {n} requested", f"Review of closure {n} is due"]
    admin = [
        words("closure.requested", ZH, number=n),
        words("closure.review_reminded", ZH, number=n),
        words("closure.review_late", ZH, number=n),
    ]
    assert inbox(world, "admin") == admin
    assert mails_to(smtp, ADMIN) == [admin[2]]  # the escalation by e-mail too
    assert mails_to(smtp, SALES) == []
    assert mails_to(smtp, REVIEWER) == []
    with translation.override(ZH):
        assert translation.gettext("cost") in body_to(smtp, OWNER, merchant[0])


def test_a_step_that_fails_and_a_device_never_returned(people: World, channels: ChannelSimulator) -> None:
    world = people
    with time_machine.travel(at(6), tick=False) as clock:
        # A recovery fee the deposit cannot cover with the rest: 99.00 + 60.00 + 300.00 > 299.00.
        setup = closable(world, recovery_fee_fen=30_000)
        channel_bind(
            actor=SYSTEM,
            merchant_id=world.merchant_a.pk,
            terminal_id=setup.terminal.pk,
            channel="alipay",
            channel_merchant_id="2088000000000001",
        )
        OutboxMessage.objects.all().delete()
        channels.control("alipay", "refuse", times=1)
        case = request_and_approve(setup)  # the channel refuses: the step needs a person
        closure_step_retry(actor=person(world, "admin"), number=case.number, step="unbind")
        advance(case.pk)
        clock.move_to(at(7, 3))
        settlement_run(actor=Actor.job("settle"), business_date=date(2026, 12, 6))
        advance(case.pk)
        clock.move_to(datetime(2026, 12, 22, 1, tzinfo=SH))  # the deadline passed: nothing came back
        advance(case.pk)
        case = ClosureCase.objects.get(pk=case.pk)
        assert case.status == "completed"
        smtp = deliver()

    assert case.return_due_on is not None  # 14 days from the return step's start
    n, due = case.number, day(case.return_due_on, ZH)
    merchant = [
        words("closure.requested", ZH, number=n),
        words("closure.approved", ZH, number=n),
        words("closure.contract_ended", ZH, number=n),
        words("closure.settled", ZH, number=n),
        words("closure.backup_ready", ZH, number=n),
        words("closure.wiped", ZH, number=n),
        words("closure.return_instructions", ZH, number=n, return_due_on=due),
        words("closure.return_overdue", ZH, number=n),
        words("closure.refunded_owing", ZH, number=n, still_owed="¥160.00"),
        words("closure.certificate_ready", ZH, number=n),
    ]
    assert mails_to(smtp, OWNER) == merchant
    assert inbox(world, "merchant_a") == merchant
    assert inbox(world, "agent_a") == [
        f"Closure {n} requested",
        f"Closure {n} approved",
        f"Closure {n}: device not returned",
        f"Closure {n} completed",
    ]
    with translation.override(ZH):
        unbind = translation.gettext("Payment channels unbound")
    admin = [
        words("closure.requested", ZH, number=n),
        words("closure.step_failed", ZH, number=n, step_label=unbind),
        words("closure.return_overdue", ZH, number=n),
    ]
    assert inbox(world, "admin") == admin
    assert mails_to(smtp, ADMIN) == admin[1:]
    assert inbox(world, "reviewer") == [f"Closure {n} requested"]
    overdue = body_to(smtp, OWNER, merchant[7])
    assert due in overdue  # not back by the deadline …
    assert "¥300.00" in overdue  # … so the recovery fee is charged
    owing = body_to(smtp, OWNER, merchant[8])
    assert "¥0.00" in owing
    assert "¥160.00" in owing


def test_a_complaint_tells_the_side_holding_it_and_the_merchant_the_answer(people: World) -> None:
    merchant = person(people, "merchant_a")
    complaint = complaint_raise(
        actor=merchant, category="deposit", subject="Deposit not refunded", text="Three weeks and nothing."
    )
    smtp = deliver()
    # The agent holds it first (its inbox); the merchant gets no e-mail for its own complaint.
    assert inbox(people, "agent_a") == [
        words("complaint.raised", EN, number=complaint.number, subject="Deposit not refunded")
    ]
    assert mails_to(smtp, OWNER) == []
    complaint_acknowledge(actor=person(people, "agent_a"), number=complaint.number)
    complaint_escalate(actor=merchant, number=complaint.number, note="no answer")
    smtp = deliver()
    assert mails_to(smtp, OWNER) == [
        words("complaint.acknowledged", ZH, number=complaint.number),
        words("complaint.escalated", ZH, number=complaint.number),
    ]
    assert inbox(people, "reviewer")[-1] == words("complaint.escalated", EN, number=complaint.number)
    assert mails_to(smtp, ADMIN) == [words("complaint.escalated", ZH, number=complaint.number)]
