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
from posfleet.testing.refusals import assert_nothing_recorded

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
    with assert_nothing_recorded(WebhookEndpoint.objects.all()):
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
    read_only = api_as("merchant_a", "read")  # its token made (and audited) before the refusal
    with assert_nothing_recorded(InboxItem.objects.all()):
        assert_problem(read_only.post("/notifications/read", {"all": True}), 403, "permission_denied")
    assert api_as("agent_a").post("/notifications/read", {"all": True}).json() == {"marked": 1}


@pytest.fixture
def two_unread(noticed):
    """Merchant A's and agent A's users each have two unread notices (suspended, then resumed)."""
    terminal_transition(actor=Actor.system("test"), sn=SN_A, action=Command.RESUME)
    dispatch_outbox()
    deliver_due()
    assert InboxItem.objects.filter(user__username="merchant_a", read_at__isnull=True).count() == 2
    return noticed


def unread() -> dict[str, int]:
    return {
        name: InboxItem.objects.filter(user__username=name, read_at__isnull=True).count()
        for name in ("merchant_a", "agent_a")
    }


@pytest.mark.parametrize(
    "body",
    [{}, {"ids": None}, {"all": False}, {"ids": None, "all": False}, {"ids": []}, {"all": None}],
)
def test_marking_read_needs_ids_or_an_explicit_all(two_unread, api_as, body):
    """A body without ids used to mark the whole inbox read; now it is refused and nothing changes."""
    before = unread()
    audit, outbox = AuditEvent.objects.count(), OutboxMessage.objects.count()
    assert_problem(api_as("merchant_a").post("/notifications/read", body), 422, "validation_error")
    assert unread() == before
    assert before["merchant_a"] == 2
    assert (AuditEvent.objects.count(), OutboxMessage.objects.count()) == (audit, outbox)


def test_ids_and_all_together_are_refused(two_unread, api_as):
    mine = InboxItem.objects.filter(user__username="merchant_a").first()
    with assert_nothing_recorded(InboxItem.objects.all()):
        body = assert_problem(
            api_as("merchant_a").post("/notifications/read", {"ids": [mine.pk], "all": True}),
            422,
            "validation_error",
        )
    assert body["detail"] == "Either name the notices to mark read or mark them all read, not both."
    assert body["field"] == "ids"
    assert unread()["merchant_a"] == 2


def test_all_marks_every_unread_item_of_the_caller_only(two_unread, api_as):
    agents = unread()["agent_a"]
    assert agents >= 1
    assert api_as("merchant_a").post("/notifications/read", {"all": True}).json() == {"marked": 2}
    assert unread() == {"merchant_a": 0, "agent_a": agents}
    assert api_as("merchant_a").post("/notifications/read", {"all": True}).json() == {"marked": 0}


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
    with assert_nothing_recorded(delivery):
        assert_problem(
            api_as("admin").post(f"/notifications/deliveries/{delivery.pk}/resend", {}), 409, "conflict"
        )
    Delivery.objects.filter(pk=delivery.pk).update(status="dead", attempts=8)
    with assert_nothing_recorded(delivery):
        assert_problem(
            api_as("reviewer").post(f"/notifications/deliveries/{delivery.pk}/resend", {}),
            403,
            "permission_denied",
        )
    with assert_nothing_recorded(Delivery.objects.all()):
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
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    for other in ("merchant_b", "agent_a", "admin"):  # even the merchant's agent and the provider
        assert_problem(api_as(other).get(path), 404, "not_found")
        with assert_nothing_recorded(endpoint):  # the secret is not rotated
            assert_problem(api_as(other).post(path + "/rotate", {}), 404, "not_found")
        with assert_nothing_recorded(endpoint):  # nor the endpoint disabled
            assert_problem(api_as(other).delete(path), 404, "not_found")
        assert api_as(other).get("/webhook-endpoints").json()["items"] == []
    rotated = merchant.post(path + "/rotate", {"overlap_hours": 2})
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in {None, secret}
    assert rotated.json()["previous_secret_valid_until"] is not None
    assert merchant.delete(path).json()["active"] is False
    with assert_nothing_recorded(endpoint):
        assert_problem(merchant.delete(path), 409, "conflict")


def test_bad_endpoint_input_is_422_and_writes_nothing(api_as):
    merchant, read_only = api_as("merchant_a"), api_as("merchant_a", "read")
    endpoints = WebhookEndpoint.objects.all()
    for body in (
        {"url": "javascript:alert(1)"},
        {"url": "https://x.test/", "event_types": ["nope"]},
        {"url": "https://x.test/" + "a" * 600},
    ):
        with assert_nothing_recorded(endpoints):
            assert_problem(merchant.post("/webhook-endpoints", body), 422, "validation_error")
    with assert_nothing_recorded(endpoints):
        assert_problem(
            merchant.post("/webhook-endpoints/1/rotate", {"overlap_hours": 999}), 422, "validation_error"
        )
    with assert_nothing_recorded(endpoints):
        assert_problem(
            read_only.post("/webhook-endpoints", {"url": "https://x.test/"}), 403, "permission_denied"
        )
    assert not WebhookEndpoint.objects.exists()


def test_renewal_over_the_api(fleet, api_as, world):
    contract = signed_contract(fleet[SN_A], deposit_fen=0)
    before = fleet[SN_A].service_expires_on
    refusals = [
        (api_as("merchant_b"), {"years": 1}, 404, "not_found"),
        (api_as("reviewer"), {"years": 1}, 403, "permission_denied"),
        (api_as("merchant_a", "read"), {}, 403, "permission_denied"),
        (api_as("merchant_a"), {"years": 9}, 422, "validation_error"),
    ]
    for api, body, status, code in refusals:
        # the expiry, the contract and its fees as they were; no journal, audit event or outbox message
        with assert_nothing_recorded(fleet[SN_A], contract, ServiceFeeDue.objects.all()):
            assert_problem(api.post(f"/terminals/{SN_A}/renewal", body), status, code)
    got = api_as("merchant_a").post(f"/terminals/{SN_A}/renewal", {"years": 2}, key="renew-1")
    assert got.status_code == 200, got.content
    body = got.json()
    assert (body["fee_fen"], body["fee_display"], body["resumed"]) == (19800, "¥198.00", False)
    again = api_as("merchant_a").post(f"/terminals/{SN_A}/renewal", {"years": 2}, key="renew-1")
    assert again.content == got.content  # a replay: charged once
    assert ServiceFeeDue.objects.filter(amount_fen=19800).count() == 1
    assert before is None or body["expires_on"] > before.isoformat()
