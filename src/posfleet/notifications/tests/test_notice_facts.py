"""Notices carry the facts that matter to their reader, in the reader's language of the moment, and go
by SMS where the merchant has a mobile number (ADR 0026)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client, override_settings
from django.utils import translation

from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Command, Status
from posfleet.notifications.channels import sms_number
from posfleet.notifications.labels import EVENT_LABELS, NOTICE_LABELS, notice_label
from posfleet.notifications.models import Delivery, InboxItem
from posfleet.notifications.notices import WORDS
from posfleet.notifications.services import deliver_due
from posfleet.platform.events import REGISTRY
from posfleet.platform.models import OutboxMessage
from posfleet.platform.outbox import dispatch_outbox
from posfleet.testing.personas import SYSTEM, World, make_terminal
from posfleet.testing.servers import http_receiver, smtp_server
from posfleet.testing.sessions import sign_in

pytestmark = pytest.mark.django_db

DEACTIVATED_AT = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # + 90 days: 31 May, 10:00


def notify(sms_url: str = "", **more: object) -> override_settings:
    from django.conf import settings

    return override_settings(POSFLEET_NOTIFY={**settings.POSFLEET_NOTIFY, "SMS_URL": sms_url}, **more)


def deactivate(sn: str) -> None:
    terminal_transition(actor=SYSTEM, sn=sn, action=Command.DEACTIVATE, reason="cost")


def inbox_page(client: Client) -> str:
    return client.get("/console/inbox/").content.decode()


def test_a_deactivation_notice_names_the_reactivation_deadline_in_the_readers_language(world: World):
    make_terminal(world, "SN-F-1", Status.ACTIVE)
    OutboxMessage.objects.all().delete()
    with time_machine.travel(DEACTIVATED_AT, tick=False):
        deactivate("SN-F-1")
        dispatch_outbox()
        deliver_due()
    reader = world.user("merchant_a")  # reads English
    item = InboxItem.objects.get(user=reader)
    tid = item.params["tid"]
    client = sign_in(Client(), reader)
    english = inbox_page(client)
    assert f"Terminal {tid} is deactivated" in english
    assert "Reason: cost." in english
    assert "It can be reactivated until 31 May 2026 10:00; after that it can only be closed" in english

    reader.language = "zh-hans"  # the same reader, now in Chinese: the same stored row reads Chinese
    reader.save()
    chinese = inbox_page(client)
    with translation.override("zh-hans"):
        subject = translation.gettext("Terminal %(tid)s is deactivated") % {"tid": tid}
    assert subject == f"终端 {tid} 已停用"
    assert subject in chinese
    assert "2026年5月31日 10:00" in chinese  # the deadline in the Chinese date format
    assert "May 31" not in chinese
    assert f"Terminal {tid} is deactivated" not in chinese
    assert InboxItem.objects.get(pk=item.pk).title == f"Terminal {tid} is deactivated"  # as delivered
    (listed,) = client.get("/api/v1/notifications").json()["items"]  # the API reads it the same way
    assert (listed["title"], "2026年5月31日 10:00" in listed["body"]) == (subject, True)
    with translation.override("zh-hans"):
        assert listed["notice_label"] == notice_label("terminal.deactivated")

    # The agent hears it too, with the same deadline; a row from before the parameters were kept (no
    # params) still shows the text it was delivered with.
    agent_item = InboxItem.objects.get(user=world.user("agent_a"))
    assert "31 May 2026 10:00" in agent_item.body
    InboxItem.objects.filter(pk=item.pk).update(params=None, title="Stored title", body="Stored body")
    assert "Stored body" in inbox_page(client)


def test_sms_where_the_merchant_has_a_mobile_and_e_mail_where_it_has_none(world: World):
    # Merchant A: a mobile and no e-mail on record. Merchant B: a landline and a contact e-mail.
    for name in ("merchant_a", "merchant_b"):
        user = world.user(name)
        user.email = ""
        user.save()
    world.merchant_a.contact_phone, world.merchant_a.contact_email = "+86 138-0000-0001", ""
    world.merchant_a.save()
    world.merchant_b.contact_phone, world.merchant_b.contact_email = "021-5555 1234", "desk@shop-b.test"
    world.merchant_b.save()
    make_terminal(world, "SN-F-A", Status.ACTIVE)
    make_terminal(world, "SN-F-B", Status.ACTIVE, merchant=world.merchant_b)
    OutboxMessage.objects.all().delete()
    with (
        time_machine.travel(DEACTIVATED_AT, tick=False),
        http_receiver() as sms,
        smtp_server() as smtp,
        notify(sms.url, **smtp.settings()),
    ):
        deactivate("SN-F-A")
        deactivate("SN-F-B")
        terminal_transition(actor=SYSTEM, sn="SN-F-A", action=Command.REACTIVATE)  # a routine notice
        dispatch_outbox()
        run = deliver_due()
        assert (run.failed, run.dead) == (0, 0)

    off_console = Delivery.objects.exclude(channel="inbox")
    told = sorted(off_console.values_list("notice", "channel", "organisation_id"))
    a, b = world.merchant_a.organisation_id, world.merchant_b.organisation_id
    assert told == sorted(
        [
            ("terminal.deactivated", "sms", a),
            ("terminal.reactivated", "sms", a),  # no e-mail on record: the mobile hears it all
            ("terminal.deactivated", "email", b),  # a landline takes no SMS: e-mail
        ]
    )
    assert [r.json()["to"] for r in sms.received] == ["13800000001", "13800000001"]

    # The contacts have no account: they read the provider's language (zh-hans), dates included.
    def stopped(sn: str) -> str:
        tid = OutboxMessage.objects.get(aggregate_id=sn, payload__command="deactivate").payload["tid"]
        with translation.override("zh-hans"):
            return translation.gettext("Terminal %(tid)s is deactivated") % {"tid": tid}

    texts = [r.json()["text"] for r in sms.received]
    assert sum(stopped("SN-F-A") in text and "2026年5月31日 10:00" in text for text in texts) == 1
    ((_sender, rcpts),) = smtp.envelopes
    assert rcpts == ["desk@shop-b.test"]
    assert smtp.messages[0]["Subject"] == stopped("SN-F-B")
    assert "2026年5月31日 10:00" in smtp.messages[0].get_content()  # the reactivation deadline


def test_every_notice_kind_and_event_type_has_a_label():
    assert set(WORDS) <= set(NOTICE_LABELS)
    ours = {name for name, event in REGISTRY.items() if ".tests." not in event.__module__}  # not tests' own
    assert ours <= set(EVENT_LABELS)


@pytest.mark.parametrize(
    ("phone", "mobile"),
    [
        ("13800000001", "13800000001"),
        ("138 0000 0001", "13800000001"),
        ("+86-138-0000-0001", "13800000001"),
        ("0086 13800000001", "13800000001"),
        ("021-5555 1234", ""),  # a landline
        ("12800000001", ""),  # no mobile starts 12
        ("1380000000", ""),  # ten digits
        ("", ""),
    ],
)
def test_what_counts_as_a_mobile_number(phone, mobile):
    assert sms_number(phone) == mobile
