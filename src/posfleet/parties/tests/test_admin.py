"""/admin/ edits of merchants: plain fields may change (django-auditlog keeps their diffs), the status
may not — it changes only through parties.services, with its audit event (STYLE.md §1)."""

from __future__ import annotations

import pytest

from posfleet.audit.models import AuditEvent
from posfleet.parties.models import Merchant
from posfleet.platform.models import OutboxMessage
from posfleet.testing.sessions import sign_in


@pytest.fixture
def superuser(world):
    user = world.user("admin")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def form_of(merchant: Merchant, **changes: str) -> dict[str, str]:
    """The admin's change form of ``merchant`` as a browser would post it (no stores: an empty inline)."""
    data = {
        "kind": merchant.kind,
        "name": merchant.name,
        "legal_name": merchant.legal_name,
        "mcc": merchant.mcc,
        "contact_name": merchant.contact_name,
        "contact_phone": merchant.contact_phone,
        "contact_email": merchant.contact_email,
        "data_key": "",
        "stores-TOTAL_FORMS": "0",
        "stores-INITIAL_FORMS": "0",
        "stores-MIN_NUM_FORMS": "0",
        "stores-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    return {**data, **changes}


def test_the_merchant_status_is_read_only_in_the_admin(client, world, superuser):
    merchant = world.merchant_b  # no stores
    url = f"/admin/parties/merchant/{merchant.pk}/change/"
    sign_in(client, superuser, stepped_up=True)
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()
    audit, outbox = AuditEvent.objects.count(), OutboxMessage.objects.count()

    response = client.post(url, form_of(merchant, name="Shop B renamed", status="closed"))

    assert response.status_code == 302, response.content.decode()[:2000]  # saved, not a form error
    merchant.refresh_from_db()
    assert merchant.name == "Shop B renamed"  # the plain edit went through…
    assert merchant.status == "active"  # …the status did not
    assert (AuditEvent.objects.count(), OutboxMessage.objects.count()) == (audit, outbox)


def test_the_status_filter_offers_every_status(client, world, superuser):
    sign_in(client, superuser, stepped_up=True)
    page = client.get("/admin/parties/merchant/").content.decode()
    for status in ("active", "suspended", "closed"):
        assert f"status__exact={status}" in page
