"""From a terminal event to e-mail, SMS, webhook and inbox: against a real SMTP server and a real HTTP
receiver on loopback, with retries, backoff, dead-letters and escalation."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings
from django.utils import translation
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from posfleet.audit.models import AuditEvent
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Command, Status
from posfleet.notifications.models import Channel, Delivery, InboxItem, WebhookEndpoint
from posfleet.notifications.services import (
    deliver_due,
    delivery_resend,
    webhook_endpoint_create,
    webhook_endpoint_disable,
    webhook_secret_rotate,
)
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import Conflict, PermissionDenied
from posfleet.platform.models import OutboxMessage
from posfleet.platform.outbox import dispatch_outbox
from posfleet.testing.personas import make_terminal
from posfleet.testing.refusals import assert_nothing_recorded
from posfleet.testing.servers import http_receiver, smtp_mailers, smtp_server

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


def notify(policy_changes: dict | None = None, **settings_: object) -> override_settings:
    from django.conf import settings

    policy = {**settings.POSFLEET_NOTIFY, **(policy_changes or {})}
    return override_settings(POSFLEET_NOTIFY=policy, **settings_)


@pytest.fixture
def shop(world):
    """merchant A with an English-speaking user, a contact e-mail and phone; its agent's user."""
    merchant_user = world.user("merchant_a")
    merchant_user.email = "owner@shop-a.test"
    merchant_user.save()
    world.merchant_a.contact_email = "front-desk@shop-a.test"
    world.merchant_a.contact_phone = "13800000001"
    world.merchant_a.save()
    agent_user = world.user("agent_a")
    agent_user.email = "sales@agent-a.test"
    agent_user.save()
    make_terminal(world, "SN-N-1", Status.ACTIVE)
    OutboxMessage.objects.all().delete()  # the setup's own events are not under test
    return world


def fanned_out() -> list[tuple[str, str, int, int]]:
    """(notice, channel, organisation, user or 0 for the merchant's contact), sorted."""
    rows = Delivery.objects.values_list("notice", "channel", "organisation_id", "user_id")
    return sorted((n, c, o, u or 0) for n, c, o, u in rows)


def suspend(sn: str = "SN-N-1") -> OutboxMessage:
    terminal_transition(actor=SYSTEM, sn=sn, action=Command.SUSPEND, reason="risk")
    return OutboxMessage.objects.get(event_type="terminal.status_changed", payload__command="suspend")


def test_a_suspension_fans_out_to_merchant_and_agent_once(shop):
    with notify({"SMS_URL": "http://127.0.0.1:9/sms"}):
        message = suspend()
        assert dispatch_outbox().sent == 1
        first = fanned_out()
        assert dispatch_outbox().handled == 0  # nothing due any more
        OutboxMessage.objects.filter(pk=message.pk).update(status="pending")  # handed over twice
        assert dispatch_outbox().sent == 1
    merchant_org, agent_org = shop.merchant_a.organisation_id, shop.agent_a.organisation_id
    merchant_user, agent_user = shop.user("merchant_a").pk, shop.user("agent_a").pk
    assert first == sorted(
        [
            ("terminal.suspended", "inbox", merchant_org, merchant_user),
            ("terminal.suspended", "email", merchant_org, merchant_user),
            ("terminal.suspended", "email", merchant_org, 0),  # the contact address
            ("terminal.suspended", "sms", merchant_org, 0),
            ("terminal.suspended", "inbox", agent_org, agent_user),
        ]
    )
    assert fanned_out() == first
    message.refresh_from_db()
    assert message.status == "sent"


def test_no_sms_without_a_provider_and_no_notice_for_quiet_commands(shop):
    suspend()
    terminal_transition(actor=SYSTEM, sn="SN-N-1", action=Command.RESUME)
    dispatch_outbox()
    assert not Delivery.objects.filter(channel=Channel.SMS).exists()
    assert set(Delivery.objects.values_list("notice", flat=True)) == {
        "terminal.suspended",
        "terminal.resumed",
    }
    # An agent hears of a suspension, not of a resumption.
    assert not Delivery.objects.filter(
        notice="terminal.resumed", organisation=shop.agent_a.organisation
    ).exists()


def test_email_and_inbox_arrive_in_each_recipients_language(shop):
    message = suspend()
    dispatch_outbox()
    with smtp_server() as smtp, notify(**smtp.settings()):
        run = deliver_due()
        assert (run.sent, run.failed, run.dead) == (4, 0, 0)
        assert deliver_due().sent == 0  # nothing sent twice
    by_rcpt = {rcpts[0]: m for (_sender, rcpts), m in zip(smtp.envelopes, smtp.messages, strict=True)}
    assert set(by_rcpt) == {"owner@shop-a.test", "front-desk@shop-a.test"}
    tid = message.payload["tid"]
    owner = by_rcpt["owner@shop-a.test"]  # the user chose English
    assert owner["Subject"] == f"Terminal {tid} is suspended"
    assert "Reason: risk control." in owner.get_content()
    assert owner["X-Posfleet-Event-Id"] == str(message.event_id)
    desk = by_rcpt["front-desk@shop-a.test"]  # the contact has no account: the provider's language
    with translation.override("zh-hans"):
        assert desk["Subject"] == translation.gettext("Terminal %(tid)s is suspended") % {"tid": tid}
    assert desk["Subject"] != owner["Subject"]
    inbox = InboxItem.objects.get(user=shop.user("merchant_a"))
    assert inbox.title == f"Terminal {tid} is suspended"
    assert inbox.link == "/console/terminals/SN-N-1/"
    assert InboxItem.objects.filter(user=shop.user("agent_a")).count() == 1
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_refused_mail_is_retried_with_backoff_then_delivered(shop):
    suspend()
    dispatch_outbox()
    start = now()
    with time_machine.travel(start, tick=False) as clock, smtp_server() as smtp, notify(**smtp.settings()):
        smtp.answer_rcpt = "451 4.3.0 mailbox busy, try later"
        run = deliver_due()
        assert (run.sent, run.failed) == (2, 2)  # the inboxes; both e-mails refused for now
        failed = Delivery.objects.get(channel="email", user__isnull=False)
        assert (failed.status, failed.attempts) == ("failed", 1)
        assert failed.next_attempt_at == start + timedelta(seconds=30)
        assert failed.last_error == "SMTP recipient refused (451)"
        assert "@" not in failed.last_error
        assert deliver_due().sent == 0  # not due yet: nothing is tried
        clock.shift(timedelta(seconds=31))
        run = deliver_due()
        assert run.failed == 2
        failed.refresh_from_db()
        assert failed.attempts == 2
        assert failed.next_attempt_at == start + timedelta(seconds=31 + 60)  # 30 s, then 1 min
        smtp.answer_rcpt = None
        clock.shift(timedelta(seconds=61))
        assert deliver_due().sent == 2
    assert len(smtp.messages) == 2
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.last_error) == ("sent", 3, "")


def test_undeliverable_mail_is_dead_lettered_and_escalated_to_the_agent(shop):
    suspend()
    dispatch_outbox()
    start = now()
    with (
        time_machine.travel(start, tick=False) as clock,
        smtp_server() as smtp,
        notify({"MAX_ATTEMPTS": 3}, **smtp.settings()),
    ):
        smtp.answer_rcpt = "451 4.3.0 try later"
        for _ in range(3):
            deliver_due()
            clock.shift(timedelta(hours=1))
        dead = list(Delivery.objects.filter(status="dead"))
        assert {(d.channel, d.attempts) for d in dead} == {("email", 3)}
        assert len(dead) == 2
        escalations = Delivery.objects.filter(notice="escalation")
        assert set(escalations.values_list("channel", "organisation_id", "escalation_of_id")) == {
            (channel, shop.agent_a.organisation_id, d.pk) for d in dead for channel in ("inbox", "email")
        }
        smtp.answer_rcpt = None
        deliver_due()
    to_agent = [
        m
        for (_s, rcpts), m in zip(smtp.envelopes, smtp.messages, strict=True)
        if rcpts == ["sales@agent-a.test"]
    ]
    assert len(to_agent) == 2
    assert to_agent[0]["Subject"] == "A notice to merchant Shop A could not be delivered"
    body = InboxItem.objects.filter(user=shop.user("agent_a"), delivery__notice="escalation").first().body
    assert "Shop A (100000000000001) by e-mail after 3 attempts" in body
    # Escalations are not escalated again, and nothing went to the merchant after it was given up.
    assert not Delivery.objects.filter(escalation_of__notice="escalation").exists()


def test_a_permanent_refusal_is_dead_at_once(shop):
    suspend()
    dispatch_outbox()
    with smtp_server() as smtp, notify(**smtp.settings()):
        smtp.answer_rcpt = "550 5.1.1 no such user"
        deliver_due()
    dead = Delivery.objects.filter(status="dead")
    assert set(dead.values_list("attempts", flat=True)) == {1}
    assert dead.count() == 2
    assert Delivery.objects.filter(notice="escalation").count() == 4


def test_an_unreachable_server_is_a_retry_not_a_crash(shop):
    suspend()
    dispatch_outbox()
    with notify(**smtp_mailers("127.0.0.1", 9)):
        run = deliver_due()
    assert (run.sent, run.failed) == (2, 2)
    assert set(Delivery.objects.filter(channel="email").values_list("last_error", flat=True)) == {
        "SMTP unreachable (ConnectionRefusedError)"
    }


def test_sms_goes_to_the_provider_signed_and_is_retried_on_5xx(shop):
    with http_receiver() as sms, notify({"SMS_URL": sms.url, "SMS_SECRET": "s3cret"}):
        message = suspend()
        dispatch_outbox()
        sms.statuses = [503]
        deliver_due(limit=100)
        delivery = Delivery.objects.get(channel="sms")
        assert (delivery.status, delivery.last_error) == ("failed", "SMS provider answered HTTP 503")
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now())
        deliver_due()
    first, second = sms.received
    assert first.body == second.body
    assert second.json() == {
        "id": str(message.event_id),
        "to": "13800000001",
        "text": second.json()["text"],
    }
    expected = hmac.new(b"s3cret", second.body, hashlib.sha256).hexdigest()
    assert second.headers["x-posfleet-signature"] == expected
    delivery.refresh_from_db()
    assert delivery.status == "sent"


def test_sms_refused_with_4xx_is_dead_and_escalated(shop):
    with http_receiver() as sms, notify({"SMS_URL": sms.url}):
        sms.default_status = 400
        suspend()
        dispatch_outbox()
        deliver_due()
    delivery = Delivery.objects.get(channel="sms")
    assert (delivery.status, delivery.last_error) == ("dead", "SMS provider answered HTTP 400")
    assert Delivery.objects.filter(escalation_of=delivery).count() == 2


def test_webhooks_are_signed_and_verify_through_a_rotation(shop, actor_of):
    merchant = actor_of(shop.user("merchant_a"))
    with http_receiver() as hook:
        endpoint, secret = webhook_endpoint_create(actor=merchant, url=hook.url, description="ERP")
        assert secret.startswith("whsec_")
        message = suspend()
        dispatch_outbox()
        deliver_due()
        (got,) = hook.received
        data = Webhook(secret).verify(got.body, got.headers)
        assert data == {
            "id": str(message.event_id),
            "type": "terminal.status_changed",
            "timestamp": message.occurred_at.isoformat(),
            "data": message.payload,
        }
        assert got.headers["webhook-id"] == str(message.event_id)
        for forged in (got.body.replace(b"risk", b"cost"), got.body + b" "):
            with pytest.raises(WebhookVerificationError):
                Webhook(secret).verify(forged, got.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + "A" * 32).verify(got.body, got.headers)
        # Rotation: both secrets verify during the overlap, only the new one after it.
        start = now()
        endpoint, new_secret = webhook_secret_rotate(actor=merchant, endpoint_id=endpoint.pk, overlap_hours=1)
        assert new_secret != secret
        terminal_transition(actor=SYSTEM, sn="SN-N-1", action=Command.RESUME)
        dispatch_outbox()
        deliver_due()
        during = hook.received[-1]
        assert Webhook(secret).verify(during.body, during.headers)["type"] == "terminal.status_changed"
        assert Webhook(new_secret).verify(during.body, during.headers)["data"]["command"] == "resume"
        with time_machine.travel(start + timedelta(hours=2), tick=False):
            terminal_transition(actor=SYSTEM, sn="SN-N-1", action=Command.SUSPEND, reason="risk")
            dispatch_outbox()
            deliver_due()
            after = hook.received[-1]
            assert after.headers["webhook-signature"].count("v1,") == 1
            assert Webhook(new_secret).verify(after.body, after.headers)["data"]["command"] == "suspend"
            with pytest.raises(WebhookVerificationError):
                Webhook(secret).verify(after.body, after.headers)
        with (
            time_machine.travel(start + timedelta(hours=3), tick=False),
            pytest.raises(WebhookVerificationError),
        ):
            Webhook(new_secret).verify(after.body, after.headers)  # replayed an hour later: too old
    assert list(
        AuditEvent.objects.filter(event_type__startswith="webhook.").values_list("event_type", flat=True)
    ) == [
        "webhook.endpoint_created",
        "webhook.secret_rotated",
    ]


def test_a_redelivery_after_a_crash_carries_the_same_id(shop, actor_of):
    """The worker died after the receiver took the message and before it was marked sent: when the
    lease ends it is sent again, with the same webhook-id, so the receiver applies it once."""
    with http_receiver() as hook:
        webhook_endpoint_create(actor=actor_of(shop.user("agent_a")), url=hook.url)
        message = suspend()
        dispatch_outbox()
        delivery = Delivery.objects.get(channel="webhook")
        start = now()
        with time_machine.travel(start, tick=False) as clock:
            from posfleet.notifications import services

            claimed = Delivery.objects.filter(pk=delivery.pk).update(
                attempts=1, next_attempt_at=start + timedelta(minutes=5)
            )
            assert claimed == 1
            services._send(Delivery.objects.get(pk=delivery.pk))  # sent; the process "dies" here
            deliver_due()  # the other notices go; this one is leased: nobody sends it meanwhile
            assert len(hook.received) == 1
            assert Delivery.objects.get(pk=delivery.pk).status == "pending"
            clock.shift(timedelta(minutes=6))
            deliver_due()
    assert len(hook.received) == 2
    assert hook.accepted == {str(message.event_id): 2}  # two copies of one id: applied once
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)


def test_endpoints_see_only_their_organisations_events(shop, actor_of):
    with http_receiver() as a_hook, http_receiver() as b_hook:
        webhook_endpoint_create(actor=actor_of(shop.user("merchant_a")), url=a_hook.url)
        webhook_endpoint_create(actor=actor_of(shop.user("merchant_b")), url=b_hook.url)
        webhook_endpoint_create(
            actor=actor_of(shop.user("agent_a")),
            url=a_hook.url + "/imports",
            event_types=["terminals.imported"],
        )
        suspend()
        dispatch_outbox()
        deliver_due()
    assert [r.path for r in a_hook.received] == ["/hook"]
    assert b_hook.received == []


def test_a_disabled_endpoint_gets_nothing_more(shop, actor_of):
    merchant = actor_of(shop.user("merchant_a"))
    with http_receiver() as hook:
        endpoint, _secret = webhook_endpoint_create(actor=merchant, url=hook.url)
        suspend()
        dispatch_outbox()
        webhook_endpoint_disable(actor=merchant, endpoint_id=endpoint.pk)
        deliver_due()
        with assert_nothing_recorded(endpoint, Delivery.objects.all()), pytest.raises(Conflict):
            webhook_endpoint_disable(actor=merchant, endpoint_id=endpoint.pk)
    assert hook.received == []
    assert Delivery.objects.get(channel="webhook").status == "dead"


def test_bad_endpoints_are_refused_and_nothing_is_written(shop, actor_of):
    from posfleet.platform.errors import NotFound, ValidationFailed

    merchant = actor_of(shop.user("merchant_a"))
    endpoints = WebhookEndpoint.objects.all()
    for url, types in (
        ("ftp://example.test/x", []),
        ("not a url", []),
        ("http://example.test/", ["no.such"]),
    ):
        with assert_nothing_recorded(endpoints), pytest.raises(ValidationFailed):
            webhook_endpoint_create(actor=merchant, url=url, event_types=types)
    with (
        notify({"WEBHOOK_ALLOW_HTTP": False}),
        assert_nothing_recorded(endpoints),
        pytest.raises(ValidationFailed),
    ):
        webhook_endpoint_create(actor=merchant, url="http://example.test/")
    assert not AuditEvent.objects.filter(event_type__startswith="webhook.").exists()
    endpoint, _ = webhook_endpoint_create(actor=merchant, url="https://erp.example.test/hook")
    # Another organisation's endpoint does not exist for you: its secret stays as it was.
    with assert_nothing_recorded(endpoints), pytest.raises(NotFound):
        webhook_secret_rotate(actor=actor_of(shop.user("merchant_b")), endpoint_id=endpoint.pk)
    with assert_nothing_recorded(endpoints), pytest.raises(NotFound):
        webhook_endpoint_disable(actor=actor_of(shop.user("merchant_b")), endpoint_id=endpoint.pk)
    with assert_nothing_recorded(endpoints), pytest.raises(PermissionDenied):
        webhook_endpoint_create(
            actor=Actor(kind="token", user=shop.user("merchant_a"), read_only=True), url="https://x.test/"
        )


def test_resend_by_staff_only_and_only_when_failed_or_dead(shop, actor_of):
    suspend()
    dispatch_outbox()
    with notify(**smtp_mailers("127.0.0.1", 9)):
        deliver_due()
    failed = Delivery.objects.filter(status="failed").first()
    sent = Delivery.objects.filter(status="sent").first()
    with assert_nothing_recorded(failed, sent), pytest.raises(PermissionDenied):
        delivery_resend(actor=actor_of(shop.user("merchant_a")), delivery_id=failed.pk)
    with assert_nothing_recorded(failed, sent), pytest.raises(Conflict):
        delivery_resend(actor=actor_of(shop.user("admin")), delivery_id=sent.pk)
    assert not AuditEvent.objects.filter(event_type="notification.resent").exists()
    failed.refresh_from_db()
    assert failed.status == "failed"
    again = delivery_resend(actor=actor_of(shop.user("admin")), delivery_id=failed.pk)
    assert (again.status, again.attempts, again.next_attempt_at) == ("pending", 0, None)
    event = AuditEvent.objects.get(event_type="notification.resent")
    assert event.before == {"status": "failed", "attempts": 1}
    assert "@" not in json.dumps(event.after)
