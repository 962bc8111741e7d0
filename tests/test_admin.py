"""/admin/ stays for superusers: every registered page loads; nobody else gets in; statuses and the
audit chain cannot be edited there."""

from __future__ import annotations

import pytest
from django.contrib import admin

from posfleet.fleet.states import Status
from posfleet.testing.personas import make_terminal


@pytest.fixture
def superuser(world):
    user = world.user("admin")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def test_every_changelist_and_change_page_loads_for_a_superuser(client, world, superuser):
    make_terminal(world, "SN-ADMIN-01", Status.ACTIVE)
    client.force_login(superuser)
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert client.get(url).status_code == 200, url
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            assert client.get(f"{url}{first.pk}/change/").status_code == 200, url


@pytest.mark.parametrize("persona", ["admin", "agent_a", "merchant_a"])
def test_non_superusers_are_sent_to_the_admin_login(client, world, persona):
    client.force_login(world.user(persona))
    response = client.get("/admin/fleet/terminal/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_terminal_status_is_read_only_and_audit_cannot_be_changed(client, world, superuser):
    terminal = make_terminal(world, "SN-ADMIN-02", Status.ACTIVE)
    client.force_login(superuser)
    page = client.get(f"/admin/fleet/terminal/{terminal.pk}/change/").content.decode()
    assert 'name="status"' not in page
    client.post(
        f"/admin/fleet/terminal/{terminal.pk}/change/", {"status": "scrapped", "model": terminal.model_id}
    )
    terminal.refresh_from_db()
    assert terminal.status == Status.ACTIVE
    from posfleet.audit.models import AuditEvent

    event = AuditEvent.objects.first()
    assert client.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
