"""Replacement (换机): a new SN from the agent's stock takes over the binding, contract and history; the
old terminal is deregistered for return. Who may (admin, the agent holding both), and every refusal
changes nothing."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from posfleet.audit.models import AuditEvent
from posfleet.billing.models import Deposit, Journal, PlanAssignment, ServiceContract, ServiceFeeDue
from posfleet.billing.services.plans import plan_assign
from posfleet.billing.verify import verify_ledger
from posfleet.enrollment.models import ExpiryMilestone
from posfleet.enrollment.services.expiry import expiry_sweep
from posfleet.enrollment.services.replacement import may_replace, replacement_stock, terminal_replace
from posfleet.fleet.models import Replacement, Terminal
from posfleet.fleet.services import (
    NewTerminal,
    terminal_deactivate,
    terminal_register,
    terminal_take_over,
    terminal_transition,
)
from posfleet.fleet.states import Status
from posfleet.notifications.models import InboxItem
from posfleet.notifications.services import deliver_due
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    DomainError,
    GuardFailed,
    NotFound,
    PermissionDenied,
    StepUpRequired,
    TransitionNotAllowed,
    ValidationFailed,
)
from posfleet.platform.models import OutboxMessage
from posfleet.platform.outbox import dispatch_outbox
from posfleet.testing.money import on_standard_plan, signed_contract, standard_plan
from posfleet.testing.personas import SYSTEM, World, make_terminal

pytestmark = pytest.mark.django_db

OLD, NEW = "SN-R-OLD", "SN-R-NEW"
STOCK_B = "SN-R-STOCK-B"  # allocated to agent B
WAREHOUSE = "SN-R-WAREHOUSE"  # still in the provider's warehouse
DAY = date(2026, 6, 10)
EXPIRES = date(2026, 9, 30)


def at(day: date, hour: int = 9) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(at(DAY), tick=False) as traveller:
        yield traveller


def in_service(
    world: World, sn: str, *, agent_code: str = "AG-A", mid: str = "", store: str = "S1"
) -> Terminal:
    """A terminal walked through the real services to active, bound to merchant A's store S1."""
    terminal_register(actor=SYSTEM, terminal=NewTerminal(sn=sn, model_id=world.model.pk))
    steps: list[tuple[str, dict[str, str]]] = [
        ("allocate", {"agent_code": agent_code}),
        ("ship", {}),
        ("bind", {"merchant_mid": mid or world.merchant_a.mid, "store_code": store}),
        ("activate", {}),
    ]
    for action, params in steps:
        terminal_transition(actor=SYSTEM, sn=sn, action=action, params=params)
    return Terminal.objects.get(sn=sn)


@pytest.fixture
def setup(world):
    """OLD: merchant A's, active in store S1, under a contract (deposit ¥299, fee ¥99), service until
    EXPIRES. NEW: in agent A's stock. STOCK_B: in agent B's stock. WAREHOUSE: in the warehouse."""
    old = in_service(world, OLD)
    signed_contract(old, deposit_fen=29900, annual_fee_fen=9900, starts_on=date(2025, 10, 1))
    Terminal.objects.filter(pk=old.pk).update(service_expires_on=EXPIRES)
    make_terminal(world, NEW, Status.ALLOCATED, agent=world.agent_a)
    Terminal.objects.filter(sn=NEW).update(service_expires_on=date(2030, 1, 1))  # its SIM's own date
    make_terminal(world, STOCK_B, Status.ALLOCATED, merchant=world.merchant_b)
    make_terminal(world, WAREHOUSE, Status.IN_STOCK)
    dispatch_outbox()
    deliver_due()
    InboxItem.objects.all().delete()
    return world


def stepped_up(world: World, name: str) -> Actor:
    return Actor.for_user(world.user(name), request_id="req-1", stepped_up_at=timezone.now())


def trace(*sns: str) -> tuple[Any, ...]:
    """What a refusal must leave untouched."""
    return (
        list(Terminal.objects.filter(sn__in=sns).order_by("sn").values()),
        list(ServiceContract.objects.order_by("pk").values()),
        AuditEvent.objects.count(),
        OutboxMessage.objects.count(),
        Replacement.objects.count(),
        ExpiryMilestone.objects.count(),
        PlanAssignment.objects.count(),
        Journal.objects.count(),
    )


# ---------------------------------------------------------------------------------------------
# The happy path


def test_the_new_terminal_takes_over_and_the_old_one_goes_to_return(setup):
    world = setup
    old = Terminal.objects.get(sn=OLD)
    contract = ServiceContract.objects.get(terminal=old, status="active")
    fees_due = list(ServiceFeeDue.objects.filter(contract=contract).values_list("pk", flat=True))
    deposit = Deposit.objects.get(contract=contract)
    journals = Journal.objects.count()
    last_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    last_outbox = OutboxMessage.objects.order_by("-id").values_list("id", flat=True).first()

    outcome = terminal_replace(
        actor=stepped_up(world, "agent_a"), old_sn=OLD, new_sn=NEW, reason="device_fault", note="printer dead"
    )

    new = Terminal.objects.get(sn=NEW)
    old.refresh_from_db()
    assert (new.status, new.merchant, new.store, new.agent) == (
        Status.ACTIVE,
        world.merchant_a,
        world.store_a,
        world.agent_a,
    )
    assert new.tid is not None
    assert new.tid != old.tid
    assert old.tid is not None  # the old one keeps its TID for its history until refurbished
    assert new.service_expires_on == EXPIRES  # the paid-up service moves, the SIM's own date does not
    assert (old.status, old.status_reason, old.merchant, old.deactivated_at) == (
        Status.DEREGISTERED,
        "replacement",
        world.merchant_a,
        None,
    )
    # The same contract row, with its fees due and deposit, now on the new terminal.
    contract.refresh_from_db()
    assert (contract.terminal_id, contract.status) == (new.pk, "active")
    assert outcome.contract == contract
    assert list(ServiceFeeDue.objects.filter(contract=contract).values_list("pk", flat=True)) == fees_due
    deposit.refresh_from_db()
    assert (deposit.contract_id, deposit.status, deposit.amount_fen) == (contract.pk, "held", 29900)
    assert Journal.objects.count() == journals  # no money moves
    assert verify_ledger().ok
    # The link, both ways.
    link = Replacement.objects.get()
    assert (link.old, link.new, link.old_tid, link.new_tid) == (old, new, old.tid, new.tid)
    assert (outcome.old, outcome.new, outcome.replacement) == (old, new, link)

    trail = [
        (e.event_type, e.subject_id, e.actor_kind, e.actor_label, e.reason, e.request_id)
        for e in AuditEvent.objects.filter(seq__gt=last_seq).order_by("seq")
    ]
    assert trail == [
        ("terminal.shipped", NEW, "job", "terminal_replace", "", "req-1"),
        ("terminal.bound", NEW, "job", "terminal_replace", "", "req-1"),
        ("terminal.activated", NEW, "job", "terminal_replace", "", "req-1"),
        ("terminal.deactivated", OLD, "job", "terminal_replace", "replacement", "req-1"),
        ("terminal.deregistered", OLD, "job", "terminal_replace", "replacement", "req-1"),
        ("terminal.took_over", NEW, "user", "agent_a", "", "req-1"),
        ("contract.transferred", str(contract.pk), "user", "agent_a", "", "req-1"),
        ("terminal.replaced", OLD, "user", "agent_a", "device_fault", "req-1"),
    ]
    took_over = AuditEvent.objects.get(event_type="terminal.took_over")
    assert (took_over.before, took_over.after, took_over.note) == (
        {"service_expires_on": "2030-01-01"},
        {"replaces": OLD, "replaced_tid": old.tid, "service_expires_on": "2026-09-30"},
        "printer dead",
    )
    moved = AuditEvent.objects.get(event_type="contract.transferred")
    assert (moved.before, moved.after) == ({"terminal": OLD}, {"terminal": NEW})
    replaced = AuditEvent.objects.get(event_type="terminal.replaced")
    assert (replaced.note, replaced.before, replaced.after) == (
        "printer dead",
        {"status": "active", "tid": old.tid},
        {
            "replaced_by": NEW,
            "new_tid": new.tid,
            "new_status": "active",
            "merchant": world.merchant_a.mid,
            "store": "S1",
            "contract": contract.pk,
            "service_expires_on": "2026-09-30",
        },
    )

    messages = list(OutboxMessage.objects.filter(id__gt=last_outbox).order_by("id"))
    assert [(m.event_type, m.aggregate_id, m.payload.get("command")) for m in messages] == [
        ("terminal.status_changed", NEW, "ship"),
        ("terminal.status_changed", NEW, "bind"),
        ("terminal.status_changed", NEW, "activate"),
        ("terminal.status_changed", OLD, "deactivate"),
        ("terminal.status_changed", OLD, "deregister"),
        ("terminal.replaced", OLD, None),
    ]
    assert messages[-1].payload == {
        "aggregate_id": OLD,
        "replaced_by": NEW,
        "reason": "device_fault",
        "tid": old.tid,
        "new_tid": new.tid,
        "new_status": "active",
        "service_expires_on": "2026-09-30",
        "contract": contract.pk,
        "merchant": world.merchant_a.mid,
        "store": "S1",
    }
    # The merchant hears of the new terminal and of the replacement, never "closed" or "deactivated"
    # (no deposit refund follows: the deposit stays with the contract); its agent of the replacement.
    dispatch_outbox()
    deliver_due()
    merchant_titles = list(
        InboxItem.objects.filter(user=world.user("merchant_a")).order_by("id").values_list("title", flat=True)
    )
    assert merchant_titles == [
        f"Terminal {new.tid} is bound to your shop",
        f"Terminal {new.tid} is active",
        f"Terminal {old.tid} is replaced by terminal {new.tid}",
    ]
    body = InboxItem.objects.get(
        title=f"Terminal {old.tid} is replaced by terminal {new.tid}", user=world.user("merchant_a")
    ).body
    assert f"(SN {NEW})" in body
    assert "(until 30 Sep 2026)" in body
    assert "return the old device" in body
    assert list(InboxItem.objects.filter(user=world.user("agent_a")).values_list("title", flat=True)) == [
        f"Terminal {old.tid} is replaced by terminal {new.tid}"
    ]


def test_the_old_terminal_goes_the_return_path(setup):
    terminal_replace(actor=stepped_up(setup, "admin"), old_sn=OLD, new_sn=NEW, reason="damage")
    warehouse = Actor.for_user(setup.user("warehouse"))
    assert terminal_transition(actor=warehouse, sn=OLD, action="receive_return").status == Status.RETURNED


def test_a_suspended_terminal_is_replaced_by_a_suspended_one(setup):
    """A risk hold does not end with a new device; the notices of the expiry are not sent again."""
    terminal_transition(actor=SYSTEM, sn=OLD, action="suspend", reason="risk")
    ExpiryMilestone.objects.create(
        terminal=Terminal.objects.get(sn=OLD),
        expires_on=EXPIRES,
        milestone="t30",
        reached_on=EXPIRES - timedelta(days=30),
        created_at=timezone.now(),
    )
    outcome = terminal_replace(
        actor=stepped_up(setup, "admin"), old_sn=OLD, new_sn=NEW, reason="device_fault"
    )
    assert (outcome.new.status, outcome.new.status_reason) == (Status.SUSPENDED, "risk")
    assert outcome.old.status == Status.DEREGISTERED
    new_events = list(
        AuditEvent.objects.filter(subject_id=NEW).order_by("seq").values_list("event_type", flat=True)
    )
    assert new_events[-3:] == ["terminal.activated", "terminal.suspended", "terminal.took_over"]
    assert list(
        ExpiryMilestone.objects.filter(terminal=outcome.new).values_list(
            "expires_on", "milestone", "reached_on"
        )
    ) == [(EXPIRES, "t30", EXPIRES - timedelta(days=30))]
    with time_machine.travel(at(EXPIRES - timedelta(days=29)), tick=False):
        assert expiry_sweep(actor=Actor.job("test")).total == 0  # the 30-day notice was sent already


def test_a_rate_plan_of_the_old_terminal_itself_goes_on_for_the_new_one(setup):
    on_standard_plan(setup.merchant_a)
    old = Terminal.objects.get(sn=OLD)
    for since in (date(2026, 1, 1), date(2026, 3, 1), date(2026, 12, 1)):
        plan_assign(
            actor=SYSTEM,
            merchant_id=setup.merchant_a.pk,
            merchant_mid=setup.merchant_a.mid,
            plan=standard_plan(),
            effective_from=since,
            terminal_id=old.pk,
            d0_settlement=since.month == 3,
        )
    outcome = terminal_replace(
        actor=stepped_up(setup, "admin"), old_sn=OLD, new_sn=NEW, reason="technology_update"
    )
    carried = PlanAssignment.objects.filter(terminal=outcome.new).order_by("effective_from")
    assert [(a.effective_from, a.d0_settlement) for a in carried] == [(DAY, True), (date(2026, 12, 1), False)]


def test_the_sub_agents_terminal_is_replaced_by_the_parent_agent_or_the_sub_agent(world):
    in_service(world, "SN-R-A1-OLD", agent_code="AG-A1", mid=world.merchant_a1.mid, store="")
    make_terminal(world, "SN-R-A1-NEW", Status.ALLOCATED, agent=world.agent_a1)
    make_terminal(world, "SN-R-A1-NEW2", Status.ALLOCATED, agent=world.agent_a1)
    make_terminal(world, "SN-R-A-STOCK", Status.ALLOCATED, agent=world.agent_a)  # the parent's: not its agent
    old = Terminal.objects.get(sn="SN-R-A1-OLD")
    assert [t.sn for t in replacement_stock(world.user("agent_a"), old)] == ["SN-R-A1-NEW", "SN-R-A1-NEW2"]
    before = trace(old.sn, "SN-R-A-STOCK")
    with pytest.raises(GuardFailed) as refused:
        terminal_replace(
            actor=stepped_up(world, "agent_a"), old_sn=old.sn, new_sn="SN-R-A-STOCK", reason="damage"
        )
    assert refused.value.params == {"guard": "new_in_agent_stock"}
    assert trace(old.sn, "SN-R-A-STOCK") == before
    first = terminal_replace(
        actor=stepped_up(world, "agent_a"), old_sn=old.sn, new_sn="SN-R-A1-NEW", reason="damage"
    )
    assert (first.new.merchant, first.new.store) == (world.merchant_a1, None)
    second = terminal_replace(
        actor=stepped_up(world, "agent_a1"), old_sn="SN-R-A1-NEW", new_sn="SN-R-A1-NEW2", reason="damage"
    )
    assert second.new.merchant == world.merchant_a1


def test_a_refurbished_device_can_be_replaced_again_in_its_next_life(setup):
    """The history is a table, not a one-to-one field: a device lives several lives."""
    admin = stepped_up(setup, "admin")
    terminal_replace(actor=admin, old_sn=OLD, new_sn=NEW, reason="device_fault")
    for action, params in [
        ("receive_return", {}),
        ("refurbish", {}),
        ("allocate", {"agent_code": "AG-A"}),
    ]:
        terminal_transition(actor=SYSTEM, sn=OLD, action=action, params=params)
    terminal_replace(actor=admin, old_sn=NEW, new_sn=OLD, reason="damage")
    links = list(Replacement.objects.order_by("id").values_list("old__sn", "new__sn"))
    assert links == [(OLD, NEW), (NEW, OLD)]
    contract = ServiceContract.objects.get(status="active")
    assert contract.terminal.sn == OLD  # back on the device it started on, in its new life
    assert Terminal.objects.get(sn=OLD).status == Status.ACTIVE


def test_take_over_refuses_twice_and_strangers(setup):
    terminal_replace(actor=stepped_up(setup, "admin"), old_sn=OLD, new_sn=NEW, reason="device_fault")
    before = trace(OLD, NEW)
    with pytest.raises(GuardFailed) as twice:
        terminal_take_over(actor=SYSTEM, sn=NEW, old_sn=OLD)
    assert twice.value.params == {"guard": "not_replaced_yet"}
    assert trace(OLD, NEW) == before
    with pytest.raises(NotFound):
        terminal_take_over(actor=Actor.for_user(setup.user("agent_b")), sn=NEW, old_sn=OLD)
    assert trace(OLD, NEW) == before
    with pytest.raises(GuardFailed) as not_closed:
        terminal_take_over(actor=SYSTEM, sn=OLD, old_sn=NEW)
    assert not_closed.value.params == {"guard": "old_deregistered"}
    assert trace(OLD, NEW) == before
    assert Replacement.objects.count() == 1


# ---------------------------------------------------------------------------------------------
# Refusals change nothing


REFUSALS = [
    # (persona, old, new, reason, note, stepped up, error, params)
    ("agent_b", OLD, STOCK_B, "device_fault", "", True, NotFound, {}),  # another agent's terminal
    ("merchant_b", OLD, NEW, "device_fault", "", True, NotFound, {}),  # another merchant's terminal
    ("merchant_a", OLD, NEW, "device_fault", "", True, PermissionDenied, {}),  # asks its agent
    ("reviewer", OLD, NEW, "device_fault", "", True, PermissionDenied, {}),
    ("warehouse", OLD, NEW, "device_fault", "", True, PermissionDenied, {}),
    ("admin", OLD, NEW, "device_fault", "", False, StepUpRequired, {}),  # no fresh step-up
    ("agent_a", OLD, NEW, "device_fault", "", False, StepUpRequired, {}),
    ("admin", OLD, STOCK_B, "device_fault", "", True, GuardFailed, {"guard": "new_in_agent_stock"}),
    ("admin", OLD, WAREHOUSE, "device_fault", "", True, GuardFailed, {"guard": "new_in_agent_stock"}),
    ("agent_a", OLD, STOCK_B, "device_fault", "", True, ValidationFailed, {"field": "new_sn"}),  # not its own
    ("admin", OLD, "SN-R-NOWHERE", "device_fault", "", True, ValidationFailed, {"field": "new_sn"}),
    ("admin", OLD, "", "device_fault", "", True, ValidationFailed, {"field": "new_sn"}),
    ("admin", OLD, OLD, "device_fault", "", True, ValidationFailed, {"field": "new_sn"}),
    ("admin", OLD, NEW, "boredom", "", True, ValidationFailed, {"field": "reason"}),
    ("admin", OLD, NEW, "", "", True, ValidationFailed, {"field": "reason"}),
    ("admin", OLD, NEW, "other", "  ", True, ValidationFailed, {"field": "note"}),
    ("admin", "SN-R-NOWHERE", NEW, "device_fault", "", True, NotFound, {}),
]


@pytest.mark.parametrize(("persona", "old", "new", "reason", "note", "fresh", "error", "params"), REFUSALS)
def test_refusals_change_nothing(setup, persona, old, new, reason, note, fresh, error, params):
    user = setup.user(persona)
    actor = stepped_up(setup, persona) if fresh else Actor.for_user(user)
    before = trace(OLD, NEW, STOCK_B, WAREHOUSE)
    with pytest.raises(error) as refused:
        terminal_replace(actor=actor, old_sn=old, new_sn=new, reason=reason, note=note)
    for key, value in params.items():
        assert refused.value.params[key] == value
    assert trace(OLD, NEW, STOCK_B, WAREHOUSE) == before


@pytest.mark.parametrize("state", [Status.DEACTIVATED, Status.BOUND, Status.DEREGISTERED])
def test_a_terminal_not_in_service_cannot_be_replaced(world, state):
    make_terminal(world, "SN-R-IDLE", state)
    make_terminal(world, NEW, Status.ALLOCATED, agent=world.agent_a)
    before = trace("SN-R-IDLE", NEW)
    with pytest.raises(TransitionNotAllowed) as refused:
        terminal_replace(actor=stepped_up(world, "admin"), old_sn="SN-R-IDLE", new_sn=NEW, reason="damage")
    assert refused.value.params == {"current_status": state.value}
    assert trace("SN-R-IDLE", NEW) == before


def test_a_new_terminal_with_a_contract_of_its_own_is_refused(setup):
    new = Terminal.objects.get(sn=NEW)
    ServiceContract.objects.create(
        terminal=new, merchant=setup.merchant_a, plan=standard_plan(), status="active", starts_on=DAY
    )
    before = trace(OLD, NEW)
    with pytest.raises(GuardFailed) as refused:
        terminal_replace(actor=stepped_up(setup, "admin"), old_sn=OLD, new_sn=NEW, reason="damage")
    assert refused.value.params == {"guard": "new_without_contract"}
    assert trace(OLD, NEW) == before


def test_a_read_only_token_may_not_replace(setup):
    token = Actor(kind="token", user=setup.user("admin"), read_only=True, stepped_up_at=timezone.now())
    before = trace(OLD, NEW)
    with pytest.raises(PermissionDenied):
        terminal_replace(actor=token, old_sn=OLD, new_sn=NEW, reason="damage")
    assert trace(OLD, NEW) == before


def test_the_replacement_reason_is_reserved_to_the_replacement(setup):
    """Nobody deactivates "for replacement" by hand: such a deactivation always has its replacement."""
    before = trace(OLD)
    with pytest.raises(ValidationFailed) as refused:
        terminal_deactivate(actor=stepped_up(setup, "admin"), sn=OLD, reason="replacement")
    assert "replacement" not in refused.value.params["allowed"]
    assert trace(OLD) == before


# ---------------------------------------------------------------------------------------------
# Who may: written out by hand (not derived from the rules)

MATRIX = {
    "admin": "ok",
    "reviewer": "403",
    "warehouse": "403",
    "agent_a": "ok",
    "agent_a1": "404",  # merchant A's terminal is held by agent A, not by its sub-agent
    "agent_b": "404",
    "merchant_a": "403",
    "merchant_b": "404",
}


@pytest.mark.parametrize(("persona", "expected"), MATRIX.items())
def test_who_may_replace(setup, persona, expected):
    user = setup.user(persona)
    old = Terminal.objects.get(sn=OLD)
    before = trace(OLD, NEW)
    try:
        terminal_replace(actor=stepped_up(setup, persona), old_sn=OLD, new_sn=NEW, reason="device_fault")
    except DomainError as exc:
        outcome = str(exc.status)
    else:
        outcome = "ok"
    assert outcome == expected
    if expected == "ok":
        assert Terminal.objects.get(sn=OLD).status == Status.DEREGISTERED
    else:
        assert trace(OLD, NEW) == before
    # The console offers it to exactly the same people.
    assert may_replace(user, old) == (expected == "ok")


def test_the_stock_offered_is_the_agents_allocated_terminals(setup):
    old = Terminal.objects.get(sn=OLD)
    make_terminal(setup, "SN-R-NEW-2", Status.ALLOCATED, agent=setup.agent_a)
    make_terminal(setup, "SN-R-SHIPPED", Status.SHIPPED, agent=setup.agent_a)
    for persona in ("admin", "agent_a"):
        assert [t.sn for t in replacement_stock(setup.user(persona), old)] == [NEW, "SN-R-NEW-2"]
    assert list(replacement_stock(setup.user("agent_b"), old)) == []
