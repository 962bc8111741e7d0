"""The inbox (everyone's own) and the deliveries page (staff; admins send again)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.utils import translation

from posfleet.console.tests.helpers import PERSONAS, SN_A
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Command
from posfleet.notifications.labels import EVENT_LABELS, NOTICE_LABELS, event_label, notice_label
from posfleet.notifications.models import Channel, Delivery, InboxItem
from posfleet.notifications.services import deliver_due, webhook_endpoint_create
from posfleet.platform.context import Actor
from posfleet.platform.models import OutboxMessage
from posfleet.platform.outbox import dispatch_outbox
from posfleet.testing.refusals import assert_nothing_recorded

STAFF = {"admin", "reviewer", "warehouse"}


@pytest.fixture
def noticed(clock, terminals):
    OutboxMessage.objects.all().delete()
    terminal_transition(actor=Actor.system("test"), sn=SN_A, action=Command.SUSPEND, reason="risk")
    dispatch_outbox()
    deliver_due()
    return terminals


def test_the_bell_counts_unread_notices_and_the_inbox_shows_them(noticed, login):
    client = login("merchant_a")
    page = client.get("/console/").content.decode()
    assert 'data-testid="inbox-unread">1<' in page
    html = client.get("/console/inbox/").content.decode()
    assert html.count('data-testid="inbox-item"') == 1
    assert "is suspended" in html
    assert "Reason: risk control." in html
    item = InboxItem.objects.get(user__username="merchant_a")
    # Opening it marks it read and goes to the terminal's page.
    opened = client.post("/console/inbox/read/", {"item": item.pk, "next": item.link})
    assert opened.status_code == 302
    assert opened["Location"] == f"/console/terminals/{SN_A}/"
    item.refresh_from_db()
    assert item.read_at is not None
    assert 'data-testid="inbox-unread"' not in client.get("/console/").content.decode()


def test_the_inbox_never_redirects_elsewhere_and_marks_only_your_own(noticed, login):
    other = InboxItem.objects.get(user__username="agent_a")
    got = login("merchant_a").post("/console/inbox/read/", {"item": other.pk, "next": "https://evil.test/"})
    assert got["Location"] == "/console/inbox/"
    other.refresh_from_db()
    assert other.read_at is None


@pytest.mark.parametrize("name", PERSONAS)
def test_nobody_sees_anothers_inbox(noticed, login, name):
    html = login(name).get("/console/inbox/").content.decode()
    expected = InboxItem.objects.filter(user__username=name).count()
    assert html.count('data-testid="inbox-item"') == expected


@pytest.mark.parametrize("name", PERSONAS)
def test_the_deliveries_page_is_for_staff(noticed, login, name):
    response = login(name).get("/console/notifications/")
    html = response.content.decode()
    if name in STAFF:
        assert response.status_code == 200
        assert 'data-testid="delivery-bar"' in html
        assert html.count('data-testid="delivery-status"') == Delivery.objects.count()
        assert 'data-nav="deliveries"' in html
    else:
        assert response.status_code == 403
        assert 'data-testid="delivery-table"' not in html
        assert 'data-nav="deliveries"' not in html


def test_an_admin_sends_a_dead_notice_again_and_a_reviewer_may_not(noticed, login):
    delivery = Delivery.objects.filter(channel="email").first() or Delivery.objects.first()
    Delivery.objects.filter(pk=delivery.pk).update(status="dead", attempts=8, last_error="SMTP 550")
    dead_page = login("admin").get("/console/notifications/?status=dead").content.decode()
    assert dead_page.count('data-testid="resend"') == 1
    assert (
        'data-testid="resend"'
        not in login("reviewer").get("/console/notifications/?status=dead").content.decode()
    )
    with assert_nothing_recorded(delivery):
        refused = login("reviewer").post(f"/console/notifications/{delivery.pk}/resend/")
    assert refused.status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == "dead"
    done = login("admin").post(f"/console/notifications/{delivery.pk}/resend/", follow=True)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert "The notice is queued" in done.content.decode()
    with assert_nothing_recorded(delivery):
        again = login("admin").post(f"/console/notifications/{delivery.pk}/resend/", follow=True)
    assert "Only a failed or dead delivery can be sent again." in again.content.decode()


def test_the_pages_speak_chinese(noticed, login, world):
    user = world.user("admin")
    user.language = "zh-hans"
    user.save()
    html = login("admin").get("/console/notifications/").content.decode()
    assert '<h1 class="page-title">通知</h1>' in html
    assert "已发送" in html or "待发送" in html or "已放弃" in html  # the status names
    inbox = InboxItem.objects.get(user__username="merchant_a")
    assert inbox.title.endswith("is suspended")  # merchant_a reads English; a zh user reads Chinese:
    with translation.override("zh-hans"):
        assert translation.gettext("Terminal %(tid)s is suspended") == "终端 %(tid)s 已暂停"


class _Text(HTMLParser):
    """The text a reader sees on a page (no markup, attributes, scripts or styles)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.hidden += tag in {"script", "style"}

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in {"script", "style"}

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


CODES = (
    set(NOTICE_LABELS)
    | set(EVENT_LABELS)
    | set(Delivery.Status.values)
    | {c for c in Channel.values if c != "sms"}  # "SMS" is also its own label (短信 in Chinese)
)


def test_the_chinese_pages_show_labels_not_codes(noticed, login, world, actor_of):
    """Every notice kind, event type, channel and status on the inbox and the deliveries page is a
    translated label, never its code (terminal.suspended, terminal.status_changed, webhook, dead …)."""
    for name in ("admin", "merchant_a"):
        user = world.user(name)
        user.language = "zh-hans"
        user.save()
    webhook_endpoint_create(actor=actor_of(world.user("merchant_a")), url="http://127.0.0.1:9/hook")
    terminal_transition(actor=Actor.system("test"), sn=SN_A, action=Command.RESUME)
    dispatch_outbox()  # a webhook delivery (pending) besides the notices
    original = Delivery.objects.filter(notice="terminal.suspended", channel="inbox").first()
    Delivery.objects.create(
        message=original.message,
        notice="escalation",
        channel="inbox",
        organisation=world.agent_a.organisation,
        user=world.user("agent_a"),
        escalation_of=original,
        status="dead",
        dedupe_key="labels-test",
    )
    page = visible(login("admin").get("/console/notifications/").content.decode())
    inbox = visible(login("merchant_a").get("/console/inbox/").content.decode())
    with translation.override("zh-hans"):
        tid = original.message.payload["tid"]
        assert translation.gettext("Terminal %(tid)s is suspended") % {"tid": tid} in inbox
        expected = [
            notice_label("terminal.suspended"),
            notice_label("webhook"),
            notice_label("escalation"),
            event_label("terminal.status_changed"),
            str(Channel.INBOX.label),
            str(Delivery.Status.DEAD.label),
        ]
    for label in expected:
        assert label in page, label
    for text in (page, inbox):
        found = [code for code in CODES if re.search(rf"(?<![\w.]){re.escape(code)}(?![\w.])", text)]
        assert found == [], found


def test_pages_of_the_inbox_keep_the_filter(noticed, login, world):
    user = world.user("merchant_a")
    message = OutboxMessage.objects.first()
    for n in range(55):
        delivery = Delivery.objects.create(
            message=message,
            notice="terminal.suspended",
            channel="inbox",
            organisation=user.organisation,
            user=user,
            dedupe_key=f"page-test-{n}",
        )
        InboxItem.objects.create(
            user=user, delivery=delivery, title=f"notice {n}", body="", created_at=message.occurred_at
        )
    html = login("merchant_a").get("/console/inbox/?show=unread").content.decode()
    assert html.count('data-testid="inbox-item"') == 50
    assert "Page 1 of 2" in html
    assert 'href="?show=unread&amp;page=2"' in html
    second = login("merchant_a").get("/console/inbox/?show=unread&page=2").content.decode()
    assert second.count('data-testid="inbox-item"') == 56 - 50
    assert 'href="?show=unread&amp;page=1"' in second


@pytest.fixture
def two_unread(noticed):
    terminal_transition(actor=Actor.system("test"), sn=SN_A, action=Command.RESUME)
    dispatch_outbox()
    deliver_due()
    return noticed


def unread(name: str) -> int:
    return InboxItem.objects.filter(user__username=name, read_at__isnull=True).count()


def test_mark_all_read_sends_an_explicit_all(two_unread, login):
    client = login("merchant_a")
    html = client.get("/console/inbox/").content.decode()
    form = html[html.rindex("<form", 0, html.index('data-testid="inbox-read-all"')) :]
    form = form[: form.index("</form>")]
    assert '<input type="hidden" name="all" value="1">' in form
    agents = unread("agent_a")
    assert (unread("merchant_a"), agents >= 1) == (2, True)
    got = client.post("/console/inbox/read/", {"all": "1"})
    assert got["Location"] == "/console/inbox/"
    assert (unread("merchant_a"), unread("agent_a")) == (0, agents)


@pytest.mark.parametrize("data", [{}, {"item": ""}, {"item": "abc"}, {"all": "0"}, {"next": "/console/"}])
def test_a_read_request_without_an_item_or_all_marks_nothing(two_unread, login, data):
    agents = unread("agent_a")
    client = login("merchant_a")
    got = client.post("/console/inbox/read/", data, follow=True, headers={"Accept-Language": "en"})
    assert got.redirect_chain == [("/console/inbox/", 302)]
    assert "Say which notices to mark read, or mark them all read." in got.content.decode()
    assert (unread("merchant_a"), unread("agent_a")) == (2, agents)
