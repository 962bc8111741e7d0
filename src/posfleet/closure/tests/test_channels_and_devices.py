"""The closure steps that talk to other parties, against the real channel simulator over loopback and a
device that polls the command channel: channels unbound (refusals need a person, timeouts are asked
again, never assumed), the wipe acknowledged and the device's credential revoked, and a device that
never comes back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from posfleet.billing.services.settlement import settlement_run
from posfleet.closure.models import CaseStep
from posfleet.closure.runner import advance
from posfleet.closure.services import closure_step_retry
from posfleet.closure.tests.conftest import Setup, closable, person, request_and_approve
from posfleet.fleet.models import DeviceCommand, Terminal
from posfleet.fleet.services import (
    device_authenticate,
    device_command_ack,
    device_commands_expire,
    device_commands_fetch,
    device_credential_issue,
)
from posfleet.parties.models import ChannelBinding
from posfleet.parties.services import channel_bind
from posfleet.platform.context import Actor
from posfleet.platform.outbox import dispatch_outbox
from posfleet.testing.personas import SYSTEM
from posfleet.testing.servers import ChannelSimulator, channel_simulator

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 12, 6, 10, tzinfo=SHANGHAI)


@pytest.fixture
def channels(settings) -> Iterator[ChannelSimulator]:  # type: ignore[no-untyped-def]
    with channel_simulator(delay=1.5) as simulator:
        settings.POSFLEET_CHANNELS_URL = simulator.url
        settings.POSFLEET_CHANNELS_TIMEOUT = 0.5
        yield simulator


def step(case, name: str) -> CaseStep:  # type: ignore[no-untyped-def]
    return CaseStep.objects.get(case=case, name=name)


def bound(setup: Setup) -> tuple[str, str]:
    """Bind the terminal to Alipay and WeChat Pay, and give its device a credential; returns it."""
    for channel, ref in (("alipay", "2088000000000001"), ("wechat_pay", "1900000109")):
        channel_bind(
            actor=SYSTEM,
            merchant_id=setup.terminal.merchant_id,
            terminal_id=setup.terminal.pk,
            channel=channel,
            channel_merchant_id=ref,
        )
    credential, secret = device_credential_issue(actor=SYSTEM, sn=setup.terminal.sn)
    return credential.key_id, secret


def settle_stop_day(clock) -> None:  # type: ignore[no-untyped-def]
    clock.move_to(DAY + timedelta(hours=17))  # 03:00 the next day
    settlement_run(actor=Actor.job("settle"), business_date=date(2026, 12, 6))


def test_channels_unbound_and_the_wipe_acknowledged(world, channels) -> None:
    with time_machine.travel(DAY, tick=False) as clock:
        setup = closable(world)
        key_id, secret = bound(setup)
        case = request_and_approve(setup)
        assert step(case, "unbind").state == "done"
        assert not ChannelBinding.objects.exclude(status="unbound").exists()
        assert channels.unbinds_done("alipay", "2088000000000001") == 1
        assert channels.unbinds_done("wechat_pay", "1900000109") == 1
        evidence = step(case, "unbind").evidence["channels"]
        assert {answer["outcome"] for answer in evidence.values()} == {"done"}

        settle_stop_day(clock)
        advance(case.pk)
        wipe = step(case, "wipe")
        assert (wipe.state, wipe.waiting_for) == ("waiting", "device")
        terminal = Terminal.objects.get(pk=setup.terminal.pk)
        # The device polls, carries out the wipe and answers.
        (command,) = device_commands_fetch(terminal=terminal)
        assert command.kind == "wipe"
        device_command_ack(terminal=terminal, command_id=command.pk, ok=True, result={"wiped": True})
        # The answer's outbox event wakes the case at once (not at the wipe's next minute).
        dispatch_outbox()
        assert step(case, "wipe").next_attempt_at == DAY + timedelta(hours=17)
        advance(case.pk)

    wipe = step(case, "wipe")
    assert wipe.state == "done"
    record = wipe.evidence["devices"][setup.terminal.sn]
    assert record["wipe"] == "acknowledged"
    assert record["result"] == {"wiped": True}
    assert record["credential_revoked"] == key_id
    assert device_authenticate(key_id, secret) is None  # the device channel answers 401 from now on
    assert step(case, "return").state == "waiting"


def test_a_refusing_channel_needs_a_person_then_a_retry_unbinds(world, channels) -> None:
    with time_machine.travel(DAY, tick=False):
        setup = closable(world)
        bound(setup)
        channels.control("alipay", "refuse", times=1)
        case = request_and_approve(setup)
        unbind = step(case, "unbind")
        assert unbind.state == "failed"
        assert "alipay" in unbind.message
        assert ChannelBinding.objects.get(channel="alipay").status == "bound"
        assert step(case, "wipe").state == "pending"  # nothing after it runs
        closure_step_retry(actor=person(world, "admin"), number=case.number, step="unbind")
        advance(case.pk)
    assert step(case, "unbind").state == "done"
    assert channels.unbinds_done("alipay", "2088000000000001") == 1


def test_a_timeout_is_asked_again_never_assumed(world, channels) -> None:
    with time_machine.travel(DAY, tick=False) as clock:
        setup = closable(world)
        bound(setup)
        # The unbind hangs past the timeout, then the status query too: nothing is known.
        channels.control("wechat_pay", "timeout", times=1)
        channels.control("wechat_pay", "timeout", times=1, op="status")
        case = request_and_approve(setup)
        unbind = step(case, "unbind")
        assert unbind.state == "pending"
        assert unbind.next_attempt_at is not None
        assert ChannelBinding.objects.get(channel="wechat_pay").status == "unbinding"
        assert channels.unbinds_done("wechat_pay", "1900000109") == 0
        clock.move_to(unbind.next_attempt_at + timedelta(seconds=1))
        advance(case.pk)
    assert step(case, "unbind").state == "done"
    assert channels.unbinds_done("wechat_pay", "1900000109") == 1


def test_a_device_that_never_answers(world, channels) -> None:
    with time_machine.travel(DAY, tick=False) as clock:
        setup = closable(world)
        key_id, secret = bound(setup)
        case = request_and_approve(setup)
        settle_stop_day(clock)
        advance(case.pk)
        assert step(case, "wipe").state == "waiting"
        clock.move_to(DAY + timedelta(days=8))  # the wipe expires unanswered
        assert device_commands_expire() == 1
        advance(case.pk)
    wipe = step(case, "wipe")
    assert wipe.state == "done"
    assert wipe.evidence["devices"][setup.terminal.sn]["wipe"] == "expired"
    assert DeviceCommand.objects.get(kind="wipe").status == "expired"
    assert device_authenticate(key_id, secret) is None
    assert step(case, "return").state == "waiting"


def test_an_answer_that_comes_while_its_step_runs_is_not_left_for_later(world, channels, monkeypatch) -> None:
    """The device answers the wipe, and the warehouse receives the device, while the runner is still in
    the step that waits for them (its handler already read 'not yet'): the runner looks again at once
    instead of at the step's next scheduled look (a minute for the wipe, the return deadline — two
    weeks — for the device)."""
    from posfleet.closure import runner
    from posfleet.closure.services import closure_receive

    with time_machine.travel(DAY, tick=False) as clock:
        setup = closable(world)
        bound(setup)
        case = request_and_approve(setup)
        settle_stop_day(clock)
        terminal = Terminal.objects.get(pk=setup.terminal.pk)
        looked: list[str] = []

        def wipe_then_the_device_answers(step):  # type: ignore[no-untyped-def]
            outcome = real_wipe(step)
            looked.append(f"wipe:{type(outcome).__name__}")
            for command in device_commands_fetch(terminal=terminal):
                device_command_ack(terminal=terminal, command_id=command.pk, ok=True, result={"wiped": True})
            dispatch_outbox()  # the answer's event reaches the runner while the step still runs
            return outcome

        def return_then_the_parcel_arrives(step):  # type: ignore[no-untyped-def]
            outcome = real_return(step)
            looked.append(f"return:{type(outcome).__name__}")
            if len(looked) == 3:  # the first look only
                closure_receive(actor=person(world, "warehouse"), sn=setup.terminal.sn)
            return outcome

        real_wipe, real_return = runner.HANDLERS["wipe"], runner.HANDLERS["return"]
        monkeypatch.setitem(runner.HANDLERS, runner.StepName.WIPE, wipe_then_the_device_answers)
        monkeypatch.setitem(runner.HANDLERS, runner.StepName.RETURN, return_then_the_parcel_arrives)
        advance(case.pk)  # one wake-up, the clock standing still

    # Each step first read 'wait', then was looked at again in the same run and found its answer.
    assert looked[:4] == ["wipe:Wait", "wipe:Done", "return:Wait", "return:Done"]
    assert step(case, "wipe").state == "done"
    assert step(case, "return").state == "done"
    assert (step(case, "inspect").state, step(case, "inspect").waiting_for) == ("waiting", "warehouse")
