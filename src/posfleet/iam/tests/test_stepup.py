"""Step-up before destructive operations: missing, stale, wrong, reused codes, lockout, backup codes."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import translation

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import Terminal
from posfleet.fleet.services import terminal_deactivate
from posfleet.fleet.states import Status
from posfleet.iam.services import backup_codes_regenerate
from posfleet.iam.stepup import verify_step_up
from posfleet.platform.clock import now
from posfleet.platform.errors import StepUpFailed, StepUpLocked, StepUpRequired
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import make_terminal
from posfleet.testing.totp import code_at

T0 = 1_800_000_000  # a fixed moment (2027-01-15); each test moves from here in 30 s steps


@pytest.fixture
def active(world):
    return make_terminal(world, "SN-STEPUP-01", Status.ACTIVE)


def state(sn):
    t = Terminal.objects.get(sn=sn)
    return t.status, AuditEvent.objects.count(), OutboxMessage.objects.count()


def test_deactivation_without_step_up_is_refused_and_changes_nothing(world, active, actor_of):
    before = state(active.sn)
    with pytest.raises(StepUpRequired) as refused:
        terminal_deactivate(actor=actor_of(world.user("admin")), sn=active.sn, reason="cost")
    assert refused.value.code == "step_up_required"
    assert state(active.sn) == before


def test_a_fresh_code_allows_deactivation(world, active, actor_of):
    admin = actor_of(world.user("admin"))
    with time_machine.travel(T0, tick=False):
        at = verify_step_up(admin, code_at(T0))
        terminal = terminal_deactivate(actor=admin.with_step_up(at), sn=active.sn, reason="cost")
    assert terminal.status == Status.DEACTIVATED
    assert list(AuditEvent.objects.order_by("-seq").values_list("event_type", flat=True)[:2]) == [
        EventType.TERMINAL_DEACTIVATED,
        EventType.STEP_UP_SUCCEEDED,
    ]


def test_a_stale_step_up_is_refused(world, active, actor_of):
    admin = actor_of(world.user("admin"))
    with time_machine.travel(T0, tick=False):
        at = verify_step_up(admin, code_at(T0))
    with time_machine.travel(T0 + 5 * 60 + 1, tick=False):
        before = state(active.sn)
        with pytest.raises(StepUpRequired):
            terminal_deactivate(actor=admin.with_step_up(at), sn=active.sn, reason="cost")
        assert state(active.sn) == before


def test_a_step_up_dated_in_the_future_is_refused(world, active, actor_of):
    admin = actor_of(world.user("admin"))
    with pytest.raises(StepUpRequired):
        terminal_deactivate(
            actor=admin.with_step_up(now() + timedelta(minutes=1)), sn=active.sn, reason="cost"
        )


def test_a_wrong_code_is_refused_counted_and_audited(world, actor_of):
    admin = actor_of(world.user("admin"))
    with time_machine.travel(T0, tick=False):
        wrong = f"{(int(code_at(T0)) + 1) % 1_000_000:06d}"
        with pytest.raises(StepUpFailed):
            verify_step_up(admin, wrong)
    last = AuditEvent.objects.order_by("-seq").first()
    assert (last.event_type, last.outcome, last.after) == (
        EventType.STEP_UP_FAILED,
        "refused",
        {"failures": 1},
    )


def test_a_code_is_accepted_only_once(world, actor_of):
    admin = actor_of(world.user("admin"))
    with time_machine.travel(T0, tick=False):
        verify_step_up(admin, code_at(T0))
        with pytest.raises(StepUpFailed):
            verify_step_up(admin, code_at(T0))
    with time_machine.travel(T0 + 30, tick=False):
        verify_step_up(admin, code_at(T0 + 30))  # the next code works


@pytest.mark.parametrize("code", ["", "   ", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes(world, actor_of, code):
    admin = actor_of(world.user("admin"))
    with pytest.raises((StepUpFailed, StepUpRequired)):
        verify_step_up(admin, code)


def test_ten_wrong_codes_lock_step_up_for_thirty_minutes(world, active, actor_of):
    admin = actor_of(world.user("admin"))
    with time_machine.travel(T0, tick=False):
        wrong = f"{(int(code_at(T0)) + 7) % 1_000_000:06d}"
        for _ in range(9):
            with pytest.raises(StepUpFailed):
                verify_step_up(admin, wrong)
        with pytest.raises(StepUpLocked):
            verify_step_up(admin, wrong)
    with time_machine.travel(T0 + 60, tick=False), pytest.raises(StepUpLocked):
        verify_step_up(admin, code_at(T0 + 60))  # even the right code
    assert Terminal.objects.get(sn=active.sn).status == Status.ACTIVE
    with time_machine.travel(T0 + 31 * 60, tick=False):
        verify_step_up(admin, code_at(T0 + 31 * 60))  # lock over


def test_other_users_are_not_locked(world, actor_of):
    with time_machine.travel(T0, tick=False):
        wrong = f"{(int(code_at(T0)) + 3) % 1_000_000:06d}"
        for _ in range(10):
            with pytest.raises((StepUpFailed, StepUpLocked)):
                verify_step_up(actor_of(world.user("admin")), wrong)
        verify_step_up(actor_of(world.user("agent_a")), code_at(T0))


def test_backup_codes_work_once(world, actor_of):
    admin = actor_of(world.user("admin"))
    codes = backup_codes_regenerate(actor=admin.with_step_up(now()))
    assert len(codes) == 10
    assert len(set(codes)) == 10
    verify_step_up(admin, codes[0])
    with pytest.raises(StepUpFailed):
        verify_step_up(admin, codes[0])


def test_regenerating_backup_codes_needs_step_up(world, actor_of):
    with pytest.raises(StepUpRequired):
        backup_codes_regenerate(actor=actor_of(world.user("admin")))


def test_a_user_without_totp_cannot_step_up(world, actor_of):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.filter(user=world.user("admin")).delete()
    with translation.override("en"), pytest.raises(StepUpRequired, match="not set up"):
        verify_step_up(actor_of(world.user("admin")), "123456")
