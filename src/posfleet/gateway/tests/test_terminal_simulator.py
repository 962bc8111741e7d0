"""`posfleet simulate terminals`: simulated terminals against a real gateway and issuer simulator on
loopback. What the simulator reports is what the gateway recorded."""

from __future__ import annotations

import gc
import io
import random
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from posfleet.billing.models import Transaction
from posfleet.fleet.models import Terminal as TerminalRow
from posfleet.fleet.services import keys_issue_missing, terminal_transition
from posfleet.fleet.states import Status
from posfleet.gateway import codec
from posfleet.gateway import dialect as d
from posfleet.gateway.simulated_traffic import METHODS, Mix, answer_code, hour_weight, load_key, load_profiles
from posfleet.gateway.simulation import (
    Simulation,
    run_simulation,
)
from posfleet.gateway.terminal import Terminal
from posfleet.testing.money import on_standard_plan
from posfleet.testing.personas import SYSTEM, make_terminal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def three(world) -> list[TerminalRow]:  # type: ignore[no-untyped-def]
    on_standard_plan(world.merchant_a)
    return [make_terminal(world, f"SN-SIM-000{i}", Status.ACTIVE) for i in range(1, 4)]


def test_what_the_simulator_reports_is_what_the_gateway_recorded(gateway, three) -> None:  # type: ignore[no-untyped-def]
    profiles = load_profiles(3, seed=1)
    assert sorted(p.sn for p in profiles) == [t.sn for t in three]
    simulation = Simulation(
        profiles,
        gateway.host,
        gateway.port,
        rate=15,
        reversals=0.15,
        declines=0.25,
        heartbeat=0.5,
        seed=7,
        reload_key=load_key,
    )
    tally = run_simulation(simulation, 4.0)  # 15 a second: enough sales even on a busy machine

    assert tally.sent["sign-on"] >= 3
    assert tally.codes[("sign-on", d.APPROVED)] == tally.sent["sign-on"]
    assert tally.sent["sale"] >= 10
    assert not tally.errors, tally.errors
    # Every answer was read, and approvals are exactly the rows recorded.
    assert tally.financial() == tally.sent["sale"] + tally.sent["reversal"]
    recorded = Transaction.objects.filter(tid__in=[t.tid for t in three], status="approved")
    assert recorded.filter(kind="sale").count() == tally.approved("sale") > 0
    assert recorded.filter(kind="reversal").count() == tally.approved("reversal")
    # Declines by code: the issuer simulator's, for the amounts ending 51 and 05.
    declined = tally.declined()
    assert declined
    assert set(declined) <= {d.INSUFFICIENT_FUNDS, d.DO_NOT_HONOUR, d.NO_ORIGINAL}
    assert declined[d.INSUFFICIENT_FUNDS] + declined[d.DO_NOT_HONOUR] > 0
    assert (
        tally.approved("sale") + declined[d.INSUFFICIENT_FUNDS] + declined[d.DO_NOT_HONOUR]
        == tally.sent["sale"]
    )
    issuer_declines = Transaction.objects.filter(tid__in=[t.tid for t in three], status="declined")
    assert issuer_declines.count() == declined[d.INSUFFICIENT_FUNDS] + declined[d.DO_NOT_HONOUR]
    # Heartbeats reached every terminal's row, with its firmware.
    for row in three:
        row.refresh_from_db()
        assert row.last_heartbeat_at is not None
        assert row.firmware_version
    summary = tally.summary()
    assert 0 < summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]


def test_a_deactivated_terminal_is_refused_and_the_others_go_on(gateway, three) -> None:  # type: ignore[no-untyped-def]
    terminal_transition(actor=SYSTEM, sn=three[0].sn, action="deactivate", reason="cost")
    profiles = load_profiles(tids=[t.tid for t in three[1:]])
    stopped = load_profiles(tids=[three[1].tid])[0]
    stopped.tid, stopped.terminal_id = three[0].tid, three[0].pk  # plays the deactivated one
    simulation = Simulation([*profiles, stopped], gateway.host, gateway.port, rate=0, heartbeat=0, seed=3)
    tally = run_simulation(simulation, 1.0)
    assert tally.codes[("sign-on", d.NOT_PERMITTED)] == 1
    assert tally.declined()[d.NOT_PERMITTED] > 0
    assert tally.approved("sale") == Transaction.objects.filter(status="approved", kind="sale").count() > 0
    assert not Transaction.objects.filter(tid=three[0].tid).exists()


def test_a_terminal_whose_key_changed_loads_the_new_one_and_signs_on(gateway, three) -> None:  # type: ignore[no-untyped-def]
    [profile] = load_profiles(tids=[three[0].tid])
    terminal_transition(actor=SYSTEM, sn=three[0].sn, action="deactivate", reason="cost")
    terminal_transition(actor=SYSTEM, sn=three[0].sn, action="reactivate")  # a new master key
    simulation = Simulation([profile], gateway.host, gateway.port, rate=20, heartbeat=0, reload_key=load_key)
    tally = run_simulation(simulation, 1.0)
    assert tally.errors["key reloaded"] == 1
    assert tally.approved("sale") > 0


def test_the_mix_of_methods_amounts_and_cards() -> None:
    mix = Mix(random.Random(5), declines=0.0)
    pos = Terminal(tid="T0000001", mid="900000000000001", master_key=bytes(16))
    methods: Counter[str] = Counter()
    amounts = []
    for _ in range(4000):
        method, fields = mix.sale(pos, at=__import__("datetime").datetime(2026, 12, 6, 12, 0))
        methods[method] += 1
        amount = int(fields["4"])
        amounts.append(amount)
        assert amount % 100 not in {5, 51, 68, 77}  # no declines asked; never the issuer's silence
        assert d.ENTRY_MODES[fields["22"][:2]] == method.replace("chip", "insert")
        if method == "scan":
            assert "48" in fields
            assert "2" not in fields
        else:
            pan = fields["2"]
            assert len(pan) in (16, 19)
            assert _luhn_ok(pan)
            if method == "tap":
                assert amount <= 100_000
    for method, (share, _entry, _median) in METHODS.items():
        assert abs(methods[method] / 4000 - share) < 0.04
    amounts.sort()
    assert 3_000 <= amounts[len(amounts) // 2] <= 9_000  # around 60 yuan
    cards = [mix.card() for _ in range(2000)]
    assert any(c[:6] in d.CREDIT_BINS for c in cards)
    assert any(d.method_of("051", c) == "foreign" for c in cards)
    declining = Mix(random.Random(1), declines=1.0)
    assert {declining.amount("chip") % 100 for _ in range(200)} == {51, 5}
    assert hour_weight(12) > 1.5 > 0.2 > hour_weight(3)


def test_the_load_clients_reading_of_field_39_agrees_with_the_decoder() -> None:
    rng = random.Random(2)
    pos = Terminal(tid="T0000001", mid="900000000000001", master_key=bytes(16))
    mix = Mix(rng)
    for _ in range(300):
        _method, sale = mix.sale(pos, at=__import__("datetime").datetime(2026, 12, 6, 12, 0))
        code = rng.choice([d.APPROVED, d.NOT_PERMITTED, d.INSUFFICIENT_FUNDS, d.MAC_FAILURE])
        echoed = {k: v for k, v in sale.items() if rng.random() < 0.8 or k in {"41", "42"}}
        extra = {"37": "000000000042", "38": "123456"} if rng.random() < 0.5 else {}
        raw = codec.encode(d.SALE_ANSWER, {**echoed, **extra, "39": code, "64": "00" * 8})
        assert answer_code(raw) == codec.decode_any(raw).get("39") == code


def test_bulk_made_terminals_get_keys_and_can_be_played(world) -> None:  # type: ignore[no-untyped-def]
    """The demo's terminals are bulk fixtures without keys: ``keys_issue_missing`` gives them one."""
    on_standard_plan(world.merchant_a)
    row = make_terminal(world, "SN-SIM-0009", Status.ACTIVE)
    row.keys.all().delete()  # as if made before keys existed
    assert load_profiles(5) == []
    assert keys_issue_missing() == 1
    assert keys_issue_missing() == 0
    assert [p.tid for p in load_profiles(5)] == [row.tid]


def _luhn_ok(pan: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(pan)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


@pytest.fixture
def thawed():  # type: ignore[no-untyped-def]
    """The command freezes what its process holds out of the collector's sight (``heap.settle``, ADR
    0043); called in-process, that process is this test session: thaw it afterwards."""
    yield
    gc.unfreeze()


def test_the_command_reports_in_plain_lines(gateway, three, thawed) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    call_command(
        "simulate",
        "terminals",
        "--gateway",
        f"{gateway.host}:{gateway.port}",
        "--terminals",
        "2",
        "--rate",
        "10",
        "--duration",
        "1.5",
        "--report",
        "0.5",
        "--seed",
        "4",
        stdout=out,
    )
    text = out.getvalue()
    assert "terminals simulator: 2 terminal(s)" in text
    assert "after " in text
    assert "last interval ms p50" in text
    assert "total " in text
    assert "approved " in text


@pytest.mark.parametrize("given", ["127.0.0.1:pos", "127.0.0.1:70000", "host:"])
def test_a_bad_address_is_a_usage_error_before_anything_runs(given: str) -> None:
    for command in (["simulate", "terminals", "--gateway", given], ["gateway", "--bind", given]):
        with pytest.raises(CommandError, match="not a host:port address"):
            call_command(*command, stdout=io.StringIO())
