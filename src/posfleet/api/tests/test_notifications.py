"""/api/v1/notifications and /api/v1/webhook-endpoints: each caller sees only its own inbox and its own
organisation's endpoints (others' are 404), deliveries are for staff, secrets are shown once."""

from __future__ import annotations

import pytest

from posfleet.api.tests.helpers import PERSONAS, SN_A, assert_problem
from posfleet.audit.models import AuditEvent
from posfleet.billing.models import ServiceFeeDue
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Command
from posfleet.notifications.models import Delivery, InboxItem, WebhookEndpoint
from posfleet.notifications.services import deliver_due
from posfleet.platform.context import Actor
from posfleet.platform.models import OutboxMessage
from posfleet.platform.outbox import dispatch_outbox
from posfleet.testing.money import signed_contract

STAFF = {"admin", "reviewer", "warehouse"}


@pytest.fixture
def noticed(fleet):
    """SN_A (merchant A's) suspended, its notices fanned out and delivered (inboxes and e-mail)."""
    OutboxMessage.objects.all().delete()  # the fleet's setup events are not under test
    terminal_transition(actor=Actor.system("test"), sn=SN_A, action=Command.SUSPEND, reason="risk")
    dispatch_outbox()
    deliver_due()
    return fleet


def test_anonymous_is_401(api_as):
    api = api_as(None)
    for path in ("/notifications", "/notifications/deliveries", "/webhook-endpoints"):
        assert_problem(api.get(path), 401, "not_authenticated")
    assert_problem(api.post("/webhook-endpoints", {"url": "https://x.test/"}), 401, "not_authenticated")
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("persona", PERSONAS)
def test_each_inbox_is_its_owners_own(noticed, api_as, persona):
    got = api_as(persona).get("/notifications")
    assert got.status_code == 200, got.content
    body = got.json()
    mine = set(InboxItem.objects.filter(user__username=persona).values_list("pk", flat=True))
    assert {i["id"] for i in body["items"]} == mine
    assert body["unread"] == len(mine)
    # Merchant A hears of its terminal, agent A (its agent) too; nobody else does.
    assert bool(mine) == (persona in {"merchant_a", "agent_a"})


def test_reading_marks_only_your_own_items(noticed, api_as, world):
    other = InboxItem.objects.get(user__username="agent_a")
    mine = InboxItem.objects.get(user__username="merchant_a")
    got = api_as("merchant_a").post("/notifications/read", {"ids": [mine.pk, other.pk]})
    assert got.json() == {"marked": 1}
    other.refresh_from_db()
    assert other.read_at is None
    assert api_as("merchant_a").get("/notifications").json()["unread"] == 0
    assert_problem(
        api_as("merchant_a", "read").post("/notifications/read", {"ids": None}), 403, "permission_denied"
    )
    assert api_as("agent_a").post("/notifications/read", {"ids": None}).json() == {"marked": 1}


@pytest.mark.parametrize("persona", PERSONAS)
def test_deliveries_are_for_staff(noticed, api_as, persona):
    got = api_as(persona).get("/notifications/deliveries", {"channel": "inbox"})
    if persona not in STAFF:
        assert_problem(got, 403, "permission_denied")
        return
    assert got.status_code == 200
    items = got.json()["items"]
    assert {(i["notice"], i["recipient"], i["status"]) for i in items} == {
        ("terminal.suspended", "merchant_a", "sent"),
        ("terminal.suspended", "agent_a", "sent"),
    }


def test_resend_is_for_admins_and_only_failed_or_dead(noticed, api_as):
    delivery = Delivery.objects.filter(channel="inbox").first()
    assert_problem(
        api_as("admin").post(f"/notifications/deliveries/{delivery.pk}/resend", {}), 409, "conflict"
    )
    Delivery.objects.filter(pk=delivery.pk).update(status="dead", attempts=8)
    assert_problem(
        api_as("reviewer").post(f"/notifications/deliveries/{delivery.pk}/resend", {}),
        403,
        "permission_denied",
    )
    assert_problem(api_as("admin").post("/notifications/deliveries/999999/resend", {}), 404, "not_found")
    assert not AuditEvent.objects.filter(event_type="notification.resent").exists()
    got = api_as("admin").post(f"/notifications/deliveries/{delivery.pk}/resend", {})
    assert got.status_code == 200, got.content
    assert (got.json()["status"], got.json()["attempts"]) == ("pending", 0)


def test_an_endpoint_secret_is_shown_once_and_endpoints_are_tenant_scoped(api_as):
    merchant = api_as("merchant_a")
    created = merchant.post(
        "/webhook-endpoints",
        {
            "url": "https://erp.shop-a.test/hook",
            "description": "ERP",
            "event_types": ["terminal.status_changed"],
        },
        key="create-1",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert body["event_types"] == ["terminal.status_changed"]
    replay = merchant.post(
        "/webhook-endpoints",
        {
            "url": "https://erp.shop-a.test/hook",
            "description": "ERP",
            "event_types": ["terminal.status_changed"],
        },
        key="create-1",
    )
    assert replay.json()["secret"] is None
    assert replay.json()["id"] == body["id"]
    assert WebhookEndpoint.objects.count() == 1
    listed = merchant.get("/webhook-endpoints").json()["items"]
    assert [e["id"] for e in listed] == [body["id"]]
    assert "secret" not in listed[0]
    path = f"/webhook-endpoints/{body['id']}"
    for other in ("merchant_b", "agent_a", "admin"):  # even the merchant's agent and the provider
        assert_problem(api_as(other).get(path), 404, "not_found")
        assert_problem(api_as(other).post(path + "/rotate", {}), 404, "not_found")
        assert_problem(api_as(other).delete(path), 404, "not_found")
        assert api_as(other).get("/webhook-endpoints").json()["items"] == []
    rotated = merchant.post(path + "/rotate", {"overlap_hours": 2})
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in {None, secret}
    assert rotated.json()["previous_secret_valid_until"] is not None
    assert merchant.delete(path).json()["active"] is False
    assert_problem(merchant.delete(path), 409, "conflict")


def test_bad_endpoint_input_is_422_and_writes_nothing(api_as):
    merchant = api_as("merchant_a")
    for body in (
        {"url": "javascript:alert(1)"},
        {"url": "https://x.test/", "event_types": ["nope"]},
        {"url": "https://x.test/" + "a" * 600},
    ):
        got = merchant.post("/webhook-endpoints", body)
        assert got.status_code == 422, got.content
    assert_problem(
        merchant.post("/webhook-endpoints/1/rotate", {"overlap_hours": 999}), 422, "validation_error"
    )
    assert_problem(
        api_as("merchant_a", "read").post("/webhook-endpoints", {"url": "https://x.test/"}),
        403,
        "permission_denied",
    )
    assert not WebhookEndpoint.objects.exists()


def test_renewal_over_the_api(fleet, api_as, world):
    signed_contract(fleet[SN_A], deposit_fen=0)
    before = fleet[SN_A].service_expires_on
    assert_problem(api_as("merchant_b").post(f"/terminals/{SN_A}/renewal", {"years": 1}), 404, "not_found")
    assert_problem(
        api_as("reviewer").post(f"/terminals/{SN_A}/renewal", {"years": 1}), 403, "permission_denied"
    )
    assert_problem(
        api_as("merchant_a", "read").post(f"/terminals/{SN_A}/renewal", {}), 403, "permission_denied"
    )
    assert api_as("merchant_a").post(f"/terminals/{SN_A}/renewal", {"years": 9}).status_code == 422
    got = api_as("merchant_a").post(f"/terminals/{SN_A}/renewal", {"years": 2}, key="renew-1")
    assert got.status_code == 200, got.content
    body = got.json()
    assert (body["fee_fen"], body["fee_display"], body["resumed"]) == (19800, "¥198.00", False)
    again = api_as("merchant_a").post(f"/terminals/{SN_A}/renewal", {"years": 2}, key="renew-1")
    assert again.content == got.content  # a replay: charged once
    assert ServiceFeeDue.objects.filter(amount_fen=19800).count() == 1
    assert before is None or body["expires_on"] > before.isoformat()
