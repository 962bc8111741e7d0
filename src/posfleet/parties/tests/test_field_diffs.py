"""Plain edits (admin) leave django-auditlog field diffs; personal contact data is masked in them."""

from __future__ import annotations

from auditlog.models import LogEntry


def test_contact_changes_are_logged_masked(world):
    merchant = world.merchant_a
    merchant.contact_phone = "13800138000"
    merchant.contact_email = "zhang.san@example.com"
    merchant.mcc = "5812"
    merchant.save()
    entry = LogEntry.objects.get_for_object(merchant).order_by("-timestamp").first()
    changes = entry.changes_dict
    assert changes["mcc"] == ["5411", "5812"]
    assert "13800138000" not in str(changes)
    assert "zhang.san@example.com" not in str(changes)
    assert set(changes) >= {"contact_phone", "contact_email"}


def test_terminal_status_is_not_a_plain_edit(world):
    from posfleet.fleet.states import Status
    from posfleet.testing.personas import make_terminal

    terminal = make_terminal(world, "SN-DIFF-0001", Status.ACTIVE)
    for entry in LogEntry.objects.get_for_object(terminal):
        assert "status" not in entry.changes_dict  # status changes live in the audit chain
