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

    terminal = make_terminal(world, "SN-DIFF-0001", Status.ACTIVE)  # register, allocate, ship, bind, activate
    entries = list(LogEntry.objects.get_for_object(terminal).order_by("pk"))
    # Registering, allocating and binding change plain fields; shipping and activating change only the
    # status (and its time), which live in the audit chain: they leave no field diff at all.
    assert [entry.action for entry in entries] == [
        LogEntry.Action.CREATE,
        LogEntry.Action.UPDATE,
        LogEntry.Action.UPDATE,
    ]
    created, allocated, bound = (entry.changes_dict for entry in entries)
    assert created["sn"] == ["None", "SN-DIFF-0001"]
    assert {"status", "status_changed_at", "updated_at"}.isdisjoint(created)
    assert allocated == {"agent": ["None", str(world.agent_a.pk)]}
    assert bound == {"tid": ["None", terminal.tid], "merchant": ["None", str(world.merchant_a.pk)]}
    assert {entry.object_repr for entry in entries} == {"SN-DIFF-0001"}
