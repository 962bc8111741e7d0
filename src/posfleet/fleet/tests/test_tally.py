"""The fleet's counters (``TerminalTally``, docs/adr/0034) equal a recount of the terminals after every
kind of change — the services, an import, a bulk UPDATE or DELETE, raw SQL, a rollback, a fold — on
SQLite and PostgreSQL: the database's triggers keep them, whoever writes."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from posfleet.fleet.models import Terminal, TerminalTally
from posfleet.fleet.selectors import count_by_model, count_by_status, tally_differences
from posfleet.fleet.services import (
    NewTerminal,
    tally_compact,
    terminal_deactivate,
    terminal_deregister,
    terminal_pull_back,
    terminal_receive_return,
    terminal_refurbish,
    terminal_take_over,
    terminal_transition,
    terminals_bulk_transition,
    terminals_register_batch,
)
from posfleet.fleet.states import Command, Status
from posfleet.testing.personas import SYSTEM, make_terminal

pytestmark = pytest.mark.django_db


def test_every_state_reached_through_the_services(world):
    for n, status in enumerate(Status):
        make_terminal(
            world, f"SN-TALLY-{n:02d}", status, merchant=world.merchant_a if n % 2 else world.merchant_b
        )
        assert tally_differences() == {}, status
    assert sum(count_by_status(world.user("admin")).values()) == Terminal.objects.count() == len(Status)


def test_an_import_in_bulk_then_allocation_binding_and_pull_back(world):
    terminals_register_batch(
        actor=SYSTEM,
        batch="B-TALLY",
        terminals=[NewTerminal(sn=f"SN-TALLY-{i:04d}", model_id=world.model.pk) for i in range(120)],
    )
    assert tally_differences() == {}
    assert count_by_status(world.user("admin")) == {"in_stock": 120}
    allocated = terminals_bulk_transition(
        actor=SYSTEM,
        sns=[f"SN-TALLY-{i:04d}" for i in range(40)],
        action=Command.ALLOCATE,
        params={"agent_code": world.agent_a1.code},
    )
    assert all(r.ok for r in allocated)
    assert tally_differences() == {}
    assert count_by_status(world.user("agent_a")) == {"allocated": 40}  # a sub-agent's, in its parent's
    assert count_by_status(world.user("agent_b")) == {}
    for i in range(3):
        terminal_transition(actor=SYSTEM, sn=f"SN-TALLY-{i:04d}", action=Command.SHIP)
        terminal_transition(
            actor=SYSTEM,
            sn=f"SN-TALLY-{i:04d}",
            action=Command.BIND,
            params={"merchant_mid": world.merchant_a1.mid},
        )
    terminal_pull_back(actor=SYSTEM, sn="SN-TALLY-0039")
    assert tally_differences() == {}
    assert count_by_status(world.user("agent_a1")) == {"allocated": 36, "bound": 3}
    assert count_by_status(world.user("admin")) == {"in_stock": 81, "allocated": 36, "bound": 3}


def test_closing_replacing_and_refurbishing(world):
    old = make_terminal(world, "SN-TALLY-OLD", Status.ACTIVE)
    make_terminal(world, "SN-TALLY-NEW", Status.BOUND, merchant=world.merchant_a)
    terminal_deactivate(actor=SYSTEM, sn=old.sn, reason="cost")
    terminal_deregister(actor=SYSTEM, sn=old.sn, reason="business_change")
    terminal_take_over(actor=SYSTEM, sn="SN-TALLY-NEW", old_sn=old.sn)
    assert tally_differences() == {}
    gone = make_terminal(world, "SN-TALLY-GONE", Status.ACTIVE)
    terminal_deactivate(actor=SYSTEM, sn=gone.sn, reason="cost")
    terminal_deregister(actor=SYSTEM, sn=gone.sn, reason="business_change")
    assert tally_differences() == {}
    terminal_receive_return(actor=SYSTEM, sn=gone.sn)
    terminal_refurbish(actor=SYSTEM, sn=gone.sn)
    assert tally_differences() == {}
    assert count_by_status(world.user("admin")).get("in_stock", 0) >= 1


def test_bulk_updates_deletes_raw_sql_and_a_rollback(world):
    from posfleet.fleet.models import TerminalModel

    for n in range(6):
        make_terminal(world, f"SN-TALLY-B{n}", Status.ACTIVE, merchant=world.merchant_a)
    other = TerminalModel.objects.create(code="nl-n910", maker="Newland", name="N910", kind="smart")
    Terminal.objects.filter(sn__in=["SN-TALLY-B0", "SN-TALLY-B1"]).update(status=Status.SUSPENDED)
    Terminal.objects.filter(sn="SN-TALLY-B2").update(model=other, agent=world.agent_b)
    Terminal.objects.filter(sn="SN-TALLY-B3").update(last_heartbeat_at="2026-11-20T10:00:00Z")  # no count
    with connection.cursor() as cursor:
        cursor.execute("UPDATE fleet_terminal SET agent_id = NULL WHERE sn = %s", ["SN-TALLY-B4"])
    assert tally_differences() == {}
    before = count_by_status(world.user("admin"))

    def block_then_fail() -> None:
        with transaction.atomic():
            Terminal.objects.filter(sn="SN-TALLY-B5").update(status=Status.BLOCKED)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        block_then_fail()
    assert count_by_status(world.user("admin")) == before
    assert tally_differences() == {}
    assert count_by_model(world.user("agent_b")) == [("Newland N910", 1)]
    make_terminal(world, "SN-TALLY-B6", Status.IN_STOCK)
    Terminal.objects.filter(sn="SN-TALLY-B6").delete()
    assert tally_differences() == {}
    expected: dict[str, int] = {}
    for status in Terminal.objects.values_list("status", flat=True):
        expected[status] = expected.get(status, 0) + 1
    assert count_by_status(world.user("admin")) == expected


def test_the_fold_keeps_every_count_and_leaves_one_row_per_key(world):
    for n in range(4):
        make_terminal(world, f"SN-TALLY-F{n}", Status.ACTIVE)
    terminal_deactivate(actor=SYSTEM, sn="SN-TALLY-F0", reason="cost")
    before = count_by_status(world.user("admin")), count_by_model(world.user("agent_a"))
    rows = tally_compact()
    assert (count_by_status(world.user("admin")), count_by_model(world.user("agent_a"))) == before
    assert tally_differences() == {}
    keys = set(TerminalTally.objects.values_list("agent_id", "model_id", "status"))
    assert rows == len(keys) == TerminalTally.objects.count()
    assert not TerminalTally.objects.filter(n=0).exists()
    terminal_deactivate(actor=SYSTEM, sn="SN-TALLY-F1", reason="cost")  # after the fold
    assert tally_differences() == {}


def test_a_merchant_counts_its_own_terminals(world):
    make_terminal(world, "SN-TALLY-M1", Status.ACTIVE, merchant=world.merchant_a)
    make_terminal(world, "SN-TALLY-M2", Status.ACTIVE, merchant=world.merchant_b)
    assert count_by_status(world.user("merchant_b")) == {"active": 1}


@pytest.mark.django_db(transaction=True)
def test_changes_and_folds_at_the_same_time_keep_every_count():
    """Terminals suspended and resumed in opposite directions by several connections at once, folds
    between them: no transaction waits on another's counter (none deadlocks), and the counts are a
    recount at the end (PostgreSQL appends; SQLite has one writer at a time)."""
    import threading

    from posfleet.testing.personas import build_world

    world = build_world()
    for n in range(8):
        make_terminal(world, f"SN-TALLY-R{n}", Status.SUSPENDED if n % 2 else Status.ACTIVE)
    errors: list[BaseException] = []
    barrier = threading.Barrier(5)

    def flip(n: int) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                for sn in (f"SN-TALLY-R{n}", f"SN-TALLY-R{n + 4}"):
                    current = Terminal.objects.get(sn=sn).status
                    command = Command.RESUME if current == Status.SUSPENDED else Command.SUSPEND
                    reason = "risk" if command == Command.SUSPEND else ""
                    terminal_transition(actor=SYSTEM, sn=sn, action=command, reason=reason)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def fold() -> None:
        try:
            barrier.wait()
            for _ in range(3):
                tally_compact()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=flip, args=(n,)) for n in range(4)] + [threading.Thread(target=fold)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert tally_differences() == {}
    tally_compact()
    assert tally_differences() == {}
    assert sum(count_by_status(world.user("admin")).values()) == 8
