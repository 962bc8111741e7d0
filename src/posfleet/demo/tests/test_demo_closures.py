"""The demo's closure cases: one in every step, made through the real services at their moments (the
chain stays in time order, the ledger verifies); channel bindings and device credentials; merchant1
keeps its terminals for the walk-through."""

from __future__ import annotations

import json
import stat
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from posfleet.audit.models import AuditEvent
from posfleet.audit.verify import verify_chain
from posfleet.billing.models import Deposit
from posfleet.billing.verify import verify_ledger
from posfleet.closure import backup as backups
from posfleet.closure.models import CaseStep, CaseTerminal, ClosureCase
from posfleet.demo.build import build_demo
from posfleet.demo.closures import STAGES
from posfleet.fleet.models import DeviceCredential, Terminal
from posfleet.fleet.selectors import tally_differences
from posfleet.iam.models import User
from posfleet.parties.models import ChannelBinding, Merchant

TODAY = date(2026, 11, 23)
SMALL = {
    "agents": 3,
    "merchants": 30,
    "terminals": 250,
    "seed": 4242,
    "today": TODAY,
    "money_days": 26,
    "sales_per_day": 0.5,
}


@pytest.fixture
def demo(db, tmp_path, monkeypatch):
    # The data backups' monthly statements as a few bytes: a year of PDFs per backup is the backup's
    # and the statements' own tests' business (closure/tests/test_backup.py, billing), not this one's.
    monkeypatch.setattr(
        backups, "statement_pdf", lambda merchant, month: f"%PDF {merchant.mid} {month}".encode()
    )
    summary = build_demo(**SMALL, devices_file=tmp_path / "demo-devices.json")
    return summary, tmp_path / "demo-devices.json"


def steps(number: str) -> dict[str, tuple[str, str]]:
    return {s.name: (s.state, s.waiting_for) for s in CaseStep.objects.filter(case__number=number)}


def test_a_case_in_every_step(demo):
    summary, devices_file = demo
    assert set(summary.closures) == {stage.name for stage in STAGES}
    assert tally_differences() == {}  # the fleet's counters followed every closure step (ADR 0034)
    case = {stage: ClosureCase.objects.get(number=number) for stage, number in summary.closures.items()}
    midnight = datetime.combine(TODAY, time(0), ZoneInfo("Asia/Shanghai"))

    waiting = case["requested"]
    assert waiting.status == "requested"
    assert waiting.review_due_at > midnight
    assert waiting.review_escalated_at is None

    late = case["review_late"]
    assert late.status == "requested"
    assert late.review_due_at < midnight
    assert late.review_reminded_at is not None
    assert late.review_escalated_at is not None

    stuck = case["channel_stuck"]
    assert stuck.status == "running"
    state = steps(stuck.number)
    assert state["unbind"][0] == "failed"
    assert state["wipe"][0] == "pending"
    assert "alipay" in CaseStep.objects.get(case=stuck, name="unbind").message
    refused = ChannelBinding.objects.get(terminal__closure_entries__case=stuck, channel="alipay")
    assert (refused.status, refused.last_outcome) == ("bound", "refused")

    away = case["awaiting_return"]
    assert away.status == "running"
    state = steps(away.number)
    assert state["wipe"][0] == "done"
    assert state["return"] == ("waiting", "merchant")
    assert away.return_due_on is not None
    assert away.return_due_on > TODAY
    wipe = CaseStep.objects.get(case=away, name="wipe").evidence["devices"]
    assert [record["wipe"] for record in wipe.values()] == ["acknowledged"]
    assert not ChannelBinding.objects.filter(terminal__closure_entries__case=away).exclude(status="unbound")

    overdue = case["return_overdue"]
    assert overdue.status == "completed"
    entry = CaseTerminal.objects.get(case=overdue)
    assert entry.received_at is None
    assert entry.recovery_fee_fen > 0
    assert steps(overdue.number)["inspect"][0] == "skipped"
    escalated = AuditEvent.objects.filter(
        subject_type="closure", subject_id=overdue.number, event_type="closure.escalated"
    )
    assert [e.reason for e in escalated] == ["return_overdue"]

    done = case["completed"]
    assert done.status == "completed"
    assert done.certificate_code
    assert len(done.certificate_code) == 12
    assert set(s for s, _w in steps(done.number).values()) <= {"done", "skipped"}
    entry = CaseTerminal.objects.select_related("terminal").get(case=done)
    assert (entry.grade, entry.disposal, entry.terminal.status) == ("B", "refurbish", "in_stock")
    if entry.contract_id is not None and Deposit.objects.filter(contract_id=entry.contract_id).exists():
        assert Deposit.objects.get(contract_id=entry.contract_id).status != "held"

    for stage in ("withdrawn", "rejected"):
        assert case[stage].status == stage
        assert CaseTerminal.objects.get(case=case[stage]).terminal.status == "active"

    # The story is in time order and both verifiers pass.
    chain = verify_chain()
    assert chain.ok, chain.problem
    times = list(AuditEvent.objects.order_by("seq").values_list("occurred_at", flat=True))
    assert times == sorted(times)
    assert verify_ledger().ok

    # merchant1 keeps every terminal for the walk-through: an active smart one, bound, with a device.
    merchant1 = Merchant.objects.get(organisation=User.objects.get(username="merchant1").organisation)
    assert not CaseTerminal.objects.filter(case__merchant=merchant1).exists()
    ready = Terminal.objects.filter(
        merchant=merchant1,
        status="active",
        model__kind="smart",
        channel_bindings__status="bound",
        device_credentials__revoked_at__isnull=True,
    ).distinct()
    assert ready.exists()

    # The live device credentials for the simulator: owner-only, each one live.
    assert stat.S_IMODE(devices_file.stat().st_mode) == 0o600
    rows = json.loads(devices_file.read_text())
    assert len(rows) == summary.devices > 0
    assert {r["sn"] for r in rows} >= set(ready.values_list("sn", flat=True))
    for row in rows:
        assert DeviceCredential.objects.filter(key_id=row["key_id"], revoked_at__isnull=True).exists()
