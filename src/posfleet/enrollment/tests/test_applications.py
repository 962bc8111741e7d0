"""Applications (申请): submit with sealed KYC, maker-checker review with the needs-info loop, the review
reminder, allocation from the agent's stock, shipping, delivery, install and the test transaction."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import time_machine
from django.db import connection

from posfleet.audit.models import AuditEvent
from posfleet.billing.models import Deposit, ServiceContract
from posfleet.enrollment import selectors
from posfleet.enrollment.models import Application, ApplicationTerminal, KycDocument
from posfleet.enrollment.services import applications as apps
from posfleet.enrollment.services import fulfilment
from posfleet.enrollment.tests.test_eligibility import veteran  # noqa: F401  (the closed merchant)
from posfleet.fleet.models import Terminal
from posfleet.fleet.states import Status
from posfleet.parties.models import Merchant
from posfleet.platform import keyring
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    GuardFailed,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from posfleet.platform.models import OutboxMessage
from posfleet.testing.applications import (
    KYC,
    PDF,
    approve,
    documents,
    more_terminals_request,
    new_merchant_request,
    png,
    stock,
    walk,
)
from posfleet.testing.refusals import assert_nothing_recorded
from posfleet.testing.sessions import sign_in

pytestmark = pytest.mark.django_db


def audit_trail(number: str) -> list[str]:
    return list(
        AuditEvent.objects.filter(subject_type="application", subject_id=number)
        .order_by("seq")
        .values_list("event_type", flat=True)
    )


def steps(number: str) -> list[str]:
    return [
        m.payload["step"]
        for m in OutboxMessage.objects.filter(aggregate_type="application", aggregate_id=number).order_by(
            "id"
        )
    ]


def unchanged():
    """Around a refused command: applications, their documents and lines, terminals and merchants as
    they were; no audit event, outbox message or ledger entry."""
    return assert_nothing_recorded(
        Application.objects.all(),
        KycDocument.objects.all(),
        ApplicationTerminal.objects.all(),
        Terminal.objects.all(),
        Merchant.objects.all(),
    )


class Node:
    """An HTML element of a parsed page: its tag, attributes and children (nodes and text)."""

    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag, self.attrs, self.children = tag, attrs, []

    def find_all(self, tag: str) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                found += [child] if child.tag == tag else []
                found += child.find_all(tag)
        return found

    def walk(self) -> list[Node]:
        return [self] + [n for c in self.children if isinstance(c, Node) for n in c.walk()]


class _TreeBuilder(HTMLParser):
    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"})

    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#document", {})
        self.open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.open[-1].children.append(node)
        if tag not in self.VOID:
            self.open.append(node)

    def handle_endtag(self, tag: str) -> None:
        if any(n.tag == tag for n in self.open[1:]):
            while self.open.pop().tag != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.open[-1].children.append(data)


def parse(html: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def by_testid(node: Node, testid: str) -> Node:
    (found,) = [n for n in node.walk() if n.attrs.get("data-testid") == testid]
    return found


def text(node: Node) -> str:
    """The text a person reads in ``node``, white space collapsed."""
    parts = [c if isinstance(c, str) else text(c) for c in node.children]
    return " ".join("".join(parts).split())


def test_from_submission_to_active_terminals(world, actor_of):
    sns = stock(world, 3)
    application = walk(world, actor_of, "completed")

    assert application.status == "completed"
    merchant = application.merchant
    assert merchant is not None
    assert merchant.name == "小明便利店"
    assert merchant.agent == world.agent_a
    assert len(merchant.mid) == 15
    assert merchant.data_key_id == application.data_key_id
    lines = list(application.lines.select_related("terminal", "contract").order_by("terminal__sn"))
    assert [line.terminal.sn for line in lines] == sns[:2]  # the first free ones of the kind
    for line in lines:
        terminal = line.terminal
        assert terminal.status == Status.ACTIVE
        assert terminal.merchant == merchant
        assert terminal.tid
        assert terminal.store is not None
        assert terminal.store.name == "小明便利店 朝阳店"
        assert line.contract is not None
        assert line.contract.status == ServiceContract.Status.ACTIVE
        assert line.contract.deposit_fen == 29_900
        assert line.contract.annual_fee_fen == 9_900
        assert terminal.service_expires_on is not None
        assert (terminal.service_expires_on - line.contract.starts_on).days in range(365, 367)
        assert line.checks == {"swipe": True, "scan": True, "print": True}
    assert Deposit.objects.filter(contract__in=[line.contract for line in lines]).count() == 2
    assert Terminal.objects.get(sn=sns[2]).status == Status.ALLOCATED  # the third was not needed

    assert audit_trail(application.number) == [
        "application.submitted",
        "application.approved",
        "application.allocated",
        "application.shipped",
        "application.delivered",
        "application.installed",
        "application.tested",
        "application.installed",
        "application.tested",
        "application.completed",
    ]
    assert steps(application.number) == [
        "submitted",
        "approved",
        "allocated",
        "shipped",
        "delivered",
        "installed",
        "installed",
        "completed",
    ]
    shipped = AuditEvent.objects.filter(
        subject_type="terminal", subject_id=sns[0], event_type="terminal.shipped"
    ).get()
    assert shipped.after["tracking_no"] == "SF1234567890"


@pytest.mark.django_db(transaction=True)
def test_kyc_is_sealed_everywhere_in_the_database(world, actor_of):
    application = apps.application_submit(
        actor=actor_of(world.user("agent_a")), request=new_merchant_request()
    )
    secrets = [KYC[name] for name in ("id_number", "licence_no", "bank_account", "legal_person", "bank_name")]
    secrets += ["身份证.png", "开户许可证.pdf"]
    texts, blobs = [], []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 (table names from introspection)
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview | bytes):
                        blobs.append(bytes(value))
                    else:
                        texts.append(str(value))
    everything, binary = "\n".join(texts), b"\n".join(blobs)
    assert application.number in everything  # the scan does read the application's rows
    assert len(blobs) >= 7  # the sealed KYC, three names and three files (and the wrapped key)
    for secret in secrets:
        assert secret not in everything, secret
        assert secret.encode() not in binary, secret
    assert PDF not in binary
    assert PDF.decode() not in everything
    if connection.vendor == "sqlite":
        connection.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        name = Path(connection.settings_dict["NAME"])
        blob = b"".join(p.read_bytes() for p in name.parent.glob(name.name + "*") if p.is_file())
        assert application.number.encode() in blob
        for secret in secrets:
            assert secret.encode() not in blob, secret
        assert PDF not in blob


def test_reviewers_read_kyc_and_every_read_is_audited(world, actor_of):
    application = apps.application_submit(
        actor=actor_of(world.user("agent_a")), request=new_merchant_request()
    )
    values = apps.kyc_reveal(actor=actor_of(world.user("reviewer")), number=application.number)
    assert values is not None
    assert values.id_number == KYC["id_number"]
    document = KycDocument.objects.get(application=application, kind="id_card")
    name, content_type, content = apps.kyc_document_read(
        actor=actor_of(world.user("reviewer")), number=application.number, document_id=document.pk
    )
    assert (name, content_type, content) == ("身份证.png", "image/png", png())
    reads = AuditEvent.objects.filter(subject_id=application.number, event_type__startswith="kyc.")
    assert sorted(reads.values_list("event_type", flat=True)) == ["kyc.document_viewed", "kyc.viewed"]
    assert all(e.actor_label == "reviewer" for e in reads)

    with unchanged(), pytest.raises(PermissionDenied):  # the agent submitted it but has no need to read it
        apps.kyc_reveal(actor=actor_of(world.user("agent_a")), number=application.number)
    with unchanged(), pytest.raises(NotFound):  # another agent does not even see the application
        apps.kyc_reveal(actor=actor_of(world.user("agent_b")), number=application.number)
    with unchanged(), pytest.raises(NotFound):
        apps.kyc_document_read(
            actor=actor_of(world.user("agent_b")), number=application.number, document_id=document.pk
        )


def test_shredding_the_key_makes_the_kyc_unreadable(world, actor_of):
    application = apps.application_submit(
        actor=actor_of(world.user("agent_a")), request=new_merchant_request()
    )
    assert keyring.shred(application.data_key) is True
    assert keyring.shred(application.data_key) is False
    with unchanged(), pytest.raises(keyring.KeyShredded):
        apps.kyc_reveal(actor=actor_of(world.user("reviewer")), number=application.number)


def test_maker_checker_and_who_may_review(world, actor_of):
    admin = actor_of(world.user("admin"))
    application = apps.application_submit(actor=admin, request=new_merchant_request(agent_code="AG-B"))
    assert application.agent == world.agent_b
    with unchanged(), pytest.raises(PermissionDenied):  # maker-checker: not the one who submitted it
        apps.application_review(actor=admin, number=application.number, decision="approve", reason="ok")
    for name in ("agent_b", "warehouse"):
        with unchanged(), pytest.raises(PermissionDenied):
            apps.application_review(
                actor=actor_of(world.user(name)), number=application.number, decision="approve", reason="ok"
            )
    with unchanged(), pytest.raises(NotFound):
        apps.application_review(
            actor=actor_of(world.user("agent_a")), number=application.number, decision="approve", reason="ok"
        )
    application.refresh_from_db()
    assert application.status == "submitted"
    assert application.reviewed_by is None
    assert audit_trail(application.number) == ["application.submitted"]
    apps.application_review(
        actor=actor_of(world.user("reviewer")),
        number=application.number,
        decision="reject",
        reasons=["scope_mismatch"],
        reason="MCC wrong",
    )
    application.refresh_from_db()
    assert application.status == "rejected"
    assert application.decision_reason == "MCC wrong"
    assert application.review_reasons == ["scope_mismatch"]
    assert application.merchant is None
    with unchanged(), pytest.raises(TransitionNotAllowed):
        apps.application_review(
            actor=actor_of(world.user("reviewer")), number=application.number, decision="approve", reason="x"
        )


def test_the_needs_info_loop_restarts_the_review_clock(world, actor_of):
    agent, reviewer = actor_of(world.user("agent_a")), actor_of(world.user("reviewer"))
    application = apps.application_submit(actor=agent, request=new_merchant_request(documents=[]))
    with unchanged(), pytest.raises(GuardFailed) as refused:
        apps.application_review(actor=reviewer, number=application.number, decision="approve", reason="fine")
    assert refused.value.params["missing"] == ["id_card", "business_licence", "bank_proof"]
    assert Application.objects.get(pk=application.pk).status == "submitted"
    assert Merchant.objects.filter(name="小明便利店").count() == 0

    apps.application_review(
        actor=reviewer,
        number=application.number,
        decision="needs_info",
        reasons=["missing_document"],
        reason="Upload the three documents: ID card, business licence and bank proof.",
    )
    application.refresh_from_db()
    assert application.status == "needs_info"
    assert application.info_request == "Upload the three documents: ID card, business licence and bank proof."
    with unchanged(), pytest.raises(ValidationFailed):
        apps.application_respond(actor=agent, number=application.number, note="  ", documents=documents())
    later = now() + timedelta(hours=30)
    with time_machine.travel(later, tick=False):
        apps.application_respond(
            actor=agent, number=application.number, note="Uploaded.", documents=documents()
        )
    application.refresh_from_db()
    assert application.status == "submitted"
    assert application.review_due_at == later + timedelta(hours=48)
    assert KycDocument.objects.filter(application=application, replaced=False).count() == 3
    approve(reviewer, application.number, "complete")
    assert audit_trail(application.number) == [
        "application.submitted",
        "application.info_requested",
        "application.info_given",
        "application.approved",
    ]


def test_bad_input_is_refused_and_nothing_is_stored(world, actor_of):
    agent = actor_of(world.user("agent_a"))
    bad = [
        ({"kyc": {**KYC, "id_number": "110105194912310021"}}, "id_number"),
        ({"kyc": {**KYC, "licence_no": "91350100M000100Y44"}}, "licence_no"),
        ({"kyc": {**KYC, "bank_account": "12ab"}}, "bank_account"),
        ({"terminal_count": 0}, "terminal_count"),
        ({"terminal_kind": "toaster"}, "terminal_kind"),
        ({"accept_offer": False}, "accept_offer"),
        ({"documents": [documents()[0].__class__("id_card", "x.exe", b"MZ\x90\x00")]}, "id_card"),
        ({"plan_code": "nope"}, "plan"),
    ]
    for changes, field in bad:
        with unchanged(), pytest.raises(ValidationFailed) as refused:
            apps.application_submit(actor=agent, request=new_merchant_request(**changes))
        assert refused.value.params["field"] == field
    assert Application.objects.count() == 0
    assert KycDocument.objects.count() == 0
    with unchanged(), pytest.raises(PermissionDenied):
        apps.application_submit(actor=actor_of(world.user("reviewer")), request=new_merchant_request())


def test_a_merchant_applies_for_more_terminals_and_sees_only_its_own(world, actor_of):
    merchant = actor_of(world.user("merchant_a"))
    request = more_terminals_request()
    application = apps.application_submit(actor=merchant, request=request)
    assert application.kind == "more_terminals"
    assert application.merchant == world.merchant_a
    assert application.shop_name == "Shop A"
    assert application.agent == world.agent_a
    assert [a.number for a in selectors.visible_applications(world.user("merchant_a"))] == [
        application.number
    ]
    assert list(selectors.visible_applications(world.user("merchant_b"))) == []
    assert [a.number for a in selectors.visible_applications(world.user("agent_a"))] == [application.number]
    assert list(selectors.visible_applications(world.user("agent_a1"))) == []
    with pytest.raises(NotFound):
        selectors.application_for(actor_of(world.user("merchant_b")), application.number)
    approve(actor_of(world.user("reviewer")), application.number, "known merchant")  # no documents to check
    application.refresh_from_db()
    assert application.merchant == world.merchant_a
    assert world.merchant_a.stores.filter(name="Second shop", city="上海").exists()


def test_allocation_needs_the_agents_stock(world, actor_of):
    stock(world, 1)
    application = walk(world, actor_of, "approved")
    agent = actor_of(world.user("agent_a"))
    with unchanged(), pytest.raises(GuardFailed) as refused:
        fulfilment.application_allocate(actor=agent, number=application.number)
    assert (refused.value.params["have"], refused.value.params["need"]) == (1, 2)
    assert ApplicationTerminal.objects.count() == 0
    assert Application.objects.get(pk=application.pk).status == "approved"
    with unchanged(), pytest.raises(GuardFailed):
        fulfilment.application_allocate(
            actor=agent, number=application.number, sns=["SN-AP-0001", "SN-NOPE-01"]
        )
    with unchanged(), pytest.raises(PermissionDenied):
        fulfilment.application_allocate(actor=actor_of(world.user("reviewer")), number=application.number)
    with unchanged(), pytest.raises(NotFound):
        fulfilment.application_allocate(actor=actor_of(world.user("merchant_a")), number=application.number)
    stock(world, 2, prefix="SN-MORE")
    fulfilment.application_allocate(
        actor=agent, number=application.number, sns=["SN-MORE-0002", "sn-ap-0001"]
    )
    assert sorted(application.lines.values_list("terminal__sn", flat=True)) == ["SN-AP-0001", "SN-MORE-0002"]
    with unchanged(), pytest.raises(TransitionNotAllowed):
        fulfilment.application_allocate(actor=agent, number=application.number)


def test_a_failed_test_transaction_changes_nothing_but_the_record(world, actor_of):
    stock(world, 2)
    application = walk(world, actor_of, "delivered")
    agent = actor_of(world.user("agent_a"))
    sn = application.lines.first().terminal.sn
    with unchanged(), pytest.raises(GuardFailed):  # not installed yet
        fulfilment.application_test(actor=agent, number=application.number, sn=sn, checks={"swipe": True})
    fulfilment.application_install(actor=agent, number=application.number, sn=sn)
    result = fulfilment.application_test(
        actor=agent, number=application.number, sn=sn, checks={"swipe": True, "scan": True, "print": False}
    )
    assert not result.passed
    assert result.failed == ["print"]
    assert Terminal.objects.get(sn=sn).status == Status.BOUND
    failed = AuditEvent.objects.filter(subject_id=application.number, event_type="application.tested").get()
    assert failed.outcome == "failure"
    result = fulfilment.application_test(
        actor=agent, number=application.number, sn=sn, checks={"swipe": True, "scan": True, "print": True}
    )
    assert result.passed
    assert not result.completed
    assert Terminal.objects.get(sn=sn).status == Status.ACTIVE
    assert Application.objects.get(pk=application.pk).status == "delivered"


def test_the_review_reminder_goes_once_per_clock(world, actor_of):
    application = apps.application_submit(
        actor=actor_of(world.user("agent_a")), request=new_merchant_request()
    )
    job = Actor.job("test")
    assert apps.review_remind_sweep(actor=job) == 0  # 48 h to go
    with time_machine.travel(application.review_due_at - timedelta(hours=7), tick=False):
        assert apps.review_remind_sweep(actor=job) == 1
        assert apps.review_remind_sweep(actor=job) == 0
    assert steps(application.number) == ["submitted", "review_reminded"]


def test_who_is_told_at_each_step(world, actor_of):
    from posfleet.notifications.models import Delivery
    from posfleet.platform.outbox import dispatch_outbox

    stock(world, 2)
    application = walk(world, actor_of, "shipped")
    dispatch_outbox()
    told = {
        (d.notice, d.channel, d.user.username if d.user else "contact")
        for d in Delivery.objects.filter(message__aggregate_id=application.number).select_related("user")
    }
    assert told == {
        ("application.submitted", "inbox", "admin"),
        ("application.submitted", "inbox", "reviewer"),  # not the warehouse
        ("application.approved", "inbox", "agent_a"),
        ("application.approved", "email", "contact"),  # the new merchant's contact address
        ("application.shipped", "inbox", "agent_a"),
        ("application.shipped", "email", "contact"),
    }
    from posfleet.notifications.services import content

    for delivery in Delivery.objects.filter(message__aggregate_id=application.number):
        subject, body = content(delivery)
        assert "—" not in subject + body, (delivery.notice, body)  # every placeholder has its value
    shipped = Delivery.objects.filter(notice="application.shipped", channel="email").get()
    assert "SF1234567890" in content(shipped)[1]


def test_a_closed_merchant_reapplies_after_the_waiting_period(veteran, actor_of):  # noqa: F811
    from django.test import Client

    from posfleet.enrollment.tests.test_eligibility import DECISION, WAIT_ENDS, noon

    merchant = actor_of(veteran.user("merchant_a"))
    request = new_merchant_request(
        applicant=apps.Applicant(
            contact_name="Ms Chen",
            contact_phone="13900001111",
            store_name="New shop",
            city="上海",
            address="1 Rd",
        )
    )
    with (
        time_machine.travel(noon(WAIT_ENDS - timedelta(days=1)), tick=False),
        unchanged(),
        pytest.raises(GuardFailed) as early,
    ):
        apps.application_submit(actor=merchant, request=request)
    assert early.value.params == {"guard": "waiting_period", "on": "2026-08-08"}
    assert Application.objects.count() == 0
    with time_machine.travel(noon(DECISION), tick=False):
        application = apps.application_submit(actor=merchant, request=request)
    assert application.kind == "reapplication"
    assert application.previous_merchant == veteran.merchant_a
    assert application.merchant is None  # a new merchant (new MID) is opened on approval
    assert application.eligibility["outcome"] == "approve"
    assert application.eligibility["policy"]["version"] == 1

    client = sign_in(Client(), veteran.user("merchant_a"))
    page = parse(client.get(f"/console/applications/{application.number}/").content.decode())
    section = by_testid(page, "eligibility")
    assert text(by_testid(section, "eligibility-outcome")) == "approve"
    paragraphs = [text(p) for p in section.find_all("p")]
    # The merchant reads the score out of 100 and the plain-words answer, not the staff's thresholds.
    assert paragraphs == [
        "approve · 100 of 100 points",
        "Your application to use our terminals again is approved.",
    ]
    assert text(section.find_all("h2")[0]) == "Eligibility after closure"
    assert text(section.find_all("span")[0]) == "policy version 1"
    rows = [[text(cell) for cell in row.find_all("td")[:3]] for row in section.find_all("tr")[1:]]
    assert rows == [
        ["Months active", "25", "25"],
        ["Takings", "20", "20"],
        ["Declines and reversals", "20", "20"],
        ["Refunds (disputes)", "10", "10"],
        ["Closure reason", "15", "15"],
        ["KYC freshness", "10", "10"],
    ]
    assert sum(int(points) for _factor, _weight, points in rows) == application.eligibility["score"] == 100
