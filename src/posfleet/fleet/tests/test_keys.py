"""Terminal master keys: issued at activation, revoked when the terminal stops, issued by hand for the
key-loading facility (CLI), and never readable once revoked."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from posfleet.audit.models import AuditEvent
from posfleet.fleet.models import TerminalKey
from posfleet.fleet.services import live_key, master_key, terminal_transition
from posfleet.fleet.states import Status
from posfleet.platform import keyring, paycrypto
from posfleet.testing.personas import SYSTEM, make_terminal
from posfleet.testing.refusals import assert_nothing_recorded

pytestmark = pytest.mark.django_db


def test_each_stop_revokes_and_each_start_issues(world) -> None:  # type: ignore[no-untyped-def]
    row = make_terminal(world, "SN-KEY-0001", Status.ACTIVE)
    first = live_key(row.pk)
    assert first is not None
    assert paycrypto.kcv(paycrypto.Algorithm.X919, master_key(first)).hex().upper() == first.master_kcv
    terminal_transition(actor=SYSTEM, sn=row.sn, action="deactivate", reason="cost")
    assert live_key(row.pk) is None
    terminal_transition(actor=SYSTEM, sn=row.sn, action="reactivate")
    second = live_key(row.pk)
    assert second is not None
    assert second.pk != first.pk
    first.refresh_from_db()
    with pytest.raises(keyring.KeyShredded):
        master_key(first)
    terminal_transition(actor=SYSTEM, sn=row.sn, action="report_lost", reason="lost")
    assert live_key(row.pk) is None
    assert list(TerminalKey.objects.filter(terminal=row).values_list("revoked_reason", flat=True)) == [
        "lost",
        "deactivated",
    ]


def test_the_cli_issues_missing_keys_and_prints_a_loaded_key_once(world) -> None:  # type: ignore[no-untyped-def]
    row = make_terminal(world, "SN-KEY-0002", Status.ACTIVE)
    TerminalKey.objects.filter(terminal=row).update(
        revoked_at=row.registered_at, revoked_reason="compromised"
    )
    out = StringIO()
    call_command("keys", "issue-missing", stdout=out)
    assert "issued 1 terminal key" in out.getvalue()
    call_command("keys", "issue-missing", stdout=out)
    assert "issued 0 terminal key" in out.getvalue()

    out = StringIO()
    call_command("keys", "issue", "--sn", row.sn, stdout=out)
    kcv_line, clear, _advice = out.getvalue().splitlines()
    key = live_key(row.pk)
    assert key is not None
    assert key.master_kcv in kcv_line
    assert bytes.fromhex(clear) == master_key(key)
    event = AuditEvent.objects.filter(event_type="terminal.key_issued", subject_id=row.sn).get()
    assert event.after["kcv"] == key.master_kcv
    assert clear not in str(event.after)
    assert clear not in str(event.before)


def test_a_stopped_terminal_gets_no_key_and_nothing_changes(world) -> None:  # type: ignore[no-untyped-def]
    row = make_terminal(world, "SN-KEY-0003", Status.DEACTIVATED)
    with assert_nothing_recorded(TerminalKey.objects.filter(terminal=row)), pytest.raises(CommandError):
        call_command("keys", "issue", "--sn", row.sn, stdout=StringIO())
