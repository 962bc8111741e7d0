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


def test_a_terminals_life_is_in_the_audit_chain_and_only_plain_edits_leave_field_diffs(world):
    from posfleet.audit.models import AuditEvent
    from posfleet.fleet.states import Status
    from posfleet.testing.personas import make_terminal

    terminal = make_terminal(world, "SN-DIFF-0001", Status.ACTIVE)  # register, allocate, ship, bind, activate
    # The transitions are recorded once, in the chain, with the fields they changed; django-auditlog
    # keeps no second copy of them: only the registration's row is there.
    entries = list(LogEntry.objects.get_for_object(terminal).order_by("pk"))
    assert [entry.action for entry in entries] == [LogEntry.Action.CREATE]
    assert entries[0].changes_dict["sn"] == ["None", "SN-DIFF-0001"]
    assert {"status", "status_changed_at", "updated_at"}.isdisjoint(entries[0].changes_dict)
    chain = {
        e.event_type: (e.before, e.after)
        for e in AuditEvent.objects.filter(subject_type="terminal", subject_id="SN-DIFF-0001")
    }
    assert chain["terminal.allocated"][0]["agent"] is None
    assert chain["terminal.allocated"][1]["agent"] == world.agent_a.code
    assert chain["terminal.bound"][1]["tid"] == terminal.tid
    assert chain["terminal.bound"][1]["merchant"] == world.merchant_a.mid

    before = terminal.firmware_version
    terminal.firmware_version = "V9.9.9"  # a plain edit, as in the admin
    terminal.save()
    edited = LogEntry.objects.get_for_object(terminal).order_by("pk").last()
    assert edited.action == LogEntry.Action.UPDATE
    assert edited.changes_dict == {"firmware_version": [before, "V9.9.9"]}
