"""A terminal's timeline (fleet/timeline.py), the one read model the API and the console show: which
events belong to it, in what order, for whom, and what each row says."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import translation

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.services import EVENT_OF, NewTerminal, terminal_transition, terminals_register_batch
from posfleet.fleet.states import Command, Status
from posfleet.fleet.timeline import reason_label, terminal_timeline, timeline_entry
from posfleet.platform.context import Actor
from posfleet.platform.errors import NotFound
from posfleet.testing.personas import SYSTEM, make_terminal, path_to, walk

RISK_DESK = Actor.system("risk-desk")


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def shown(entry) -> dict:
    """What a reader sees of a row, labels as text."""
    return {
        "event": str(entry.event_label),
        "actor": entry.actor_label,
        "actor_kind": str(entry.actor_kind_label),
        "reason": str(entry.reason_label),
        "note": entry.note,
        "status": (entry.before_status, entry.after_status),
        "facts": [(f.key, str(f.label), f.value) for f in entry.facts],
    }


def test_its_events_and_its_batch_import_oldest_first_and_no_one_elses(world):
    terminals_register_batch(
        actor=SYSTEM,
        batch="B-TL-1",
        terminals=[NewTerminal(sn=sn, model_id=world.model.pk) for sn in ("SN-TL-0001", "SN-TL-0002")],
    )
    for sn in ("SN-TL-0001", "SN-TL-0002"):
        terminal_transition(actor=SYSTEM, sn=sn, action=Command.ALLOCATE, params={"agent_code": "AG-A"})

    timeline = terminal_timeline(world.user("admin"), " sn-tl-0001 ")
    assert timeline.terminal.sn == "SN-TL-0001"
    rows = timeline.entries()
    assert [(r.event_type, r.subject_type, r.subject_id) for r in rows] == [
        ("terminals.imported", "import_batch", "B-TL-1"),
        ("terminal.allocated", "terminal", "SN-TL-0001"),
    ]
    assert rows[0].seq < rows[1].seq
    assert [r.seq for r in timeline.entries(newest_first=True)] == [rows[1].seq, rows[0].seq]
    assert shown(rows[0])["facts"] == [("count", "terminals", 2)]


def test_a_row_says_what_happened_who_did_it_why_and_the_facts_worth_showing(world):
    make_terminal(world, "SN-TL-0003", Status.ACTIVE)
    terminal_transition(
        actor=RISK_DESK, sn="SN-TL-0003", action=Command.SUSPEND, reason="risk", note="chargebacks"
    )
    rows = terminal_timeline(world.user("admin"), "SN-TL-0003").entries()
    by_event = {r.event_type: shown(r) for r in rows}
    assert list(by_event) == [
        "terminal.registered",
        "terminal.allocated",
        "terminal.shipped",
        "terminal.bound",
        "terminal.activated",
        "terminal.suspended",
    ]
    assert by_event["terminal.suspended"] == {
        "event": "suspended",
        "actor": "risk-desk",
        "actor_kind": "system",
        "reason": "risk control",
        "note": "chargebacks",
        "status": ("active", "suspended"),
        "facts": [],  # nothing but the status changed
    }
    assert by_event["terminal.allocated"]["facts"] == [("agent", "agent", "AG-A")]
    # binding records the agent too, but it was already there: only what changed is shown
    bound = next(r for r in rows if r.event_type == "terminal.bound")
    assert bound.after["agent"] == bound.before["agent"] == "AG-A"
    assert [key for key, _label, _value in by_event["terminal.bound"]["facts"]] == ["merchant", "tid"]
    suspended = rows[-1]
    assert (suspended.reason, suspended.before["status"], suspended.after["status"]) == (
        "risk",
        "active",
        "suspended",
    )


def test_a_reason_another_context_registered_shows_in_its_own_words(world):
    """The replacement (enrollment) registers its reasons: "damage" is no fleet command's reason."""
    make_terminal(world, "SN-TL-0004", Status.ACTIVE)
    with transaction.atomic():
        record(
            RISK_DESK,
            Entry(
                event_type=EventType.TERMINAL_REPLACED,
                subject_type="terminal",
                subject_id="SN-TL-0004",
                reason="damage",
                after={"replaced_by": "SN-TL-0005", "new_tid": "A1B2C3D4"},
            ),
        )
    replaced = terminal_timeline(world.user("admin"), "SN-TL-0004").entries()[-1]
    assert shown(replaced) | {"actor": "", "actor_kind": ""} == {
        "event": "replaced by a new terminal",
        "actor": "",
        "actor_kind": "",
        "reason": "damaged",
        "note": "",
        "status": ("", ""),
        "facts": [("replaced_by", "replaced by", "SN-TL-0005"), ("new_tid", "new TID", "A1B2C3D4")],
    }
    # a fleet command's reason in its command's taxonomy; codes nobody knows stay as they are
    assert str(reason_label(EventType.TERMINAL_DEACTIVATED, "cost")) == "cost"
    assert str(reason_label(EventType.TERMINAL_SCRAPPED, "beyond_repair")) == "damaged beyond repair"
    assert reason_label("terminal.something_new", "no_such_reason") == "no_such_reason"


def test_an_event_type_no_longer_known_still_shows(world):
    make_terminal(world, "SN-TL-0006")
    event = terminal_timeline(world.user("admin"), "SN-TL-0006").events.get()
    event.event_type = "terminal.retired_event"  # an old row, in memory only
    assert timeline_entry(event).event_label == "terminal.retired_event"


def test_others_terminals_have_no_timeline(world):
    make_terminal(world, "SN-TL-B001", Status.ACTIVE, merchant=world.merchant_b)
    for name in ("merchant_a", "agent_a"):
        with pytest.raises(NotFound):
            terminal_timeline(world.user(name), "SN-TL-B001")
    assert len(terminal_timeline(world.user("merchant_b"), "SN-TL-B001").entries()) == 5


def test_a_refurbished_device_shows_its_new_merchant_and_agent_only_their_part(world):
    """Merchant A's device comes back, is refurbished and goes to agent B's merchant B: the provider's
    staff read its whole history; merchant B and agent B read its new life, from its allocation to agent
    B — nothing of merchant A or agent A (their codes, stores, TIDs and reasons are not theirs)."""
    sn = "SN-TL-R001"
    make_terminal(world, sn, Status.ACTIVE, merchant=world.merchant_a)
    walk(world, sn, [Command.DEACTIVATE, Command.DEREGISTER, Command.RECEIVE_RETURN, Command.REFURBISH])
    walk(world, sn, path_to(Status.ACTIVE), merchant=world.merchant_b)

    everything = terminal_timeline(world.user("admin"), sn).entries()
    shown_to_staff = {str(f.value) for row in everything for f in row.facts}
    assert {world.merchant_a.mid, world.agent_a.code, world.merchant_b.mid} <= shown_to_staff
    for name in ("merchant_b", "agent_b"):
        rows = terminal_timeline(world.user(name), sn).entries()
        assert [r.event_type for r in rows][:3] == [
            EVENT_OF[Command.ALLOCATE],
            EVENT_OF[Command.SHIP],
            EVENT_OF[Command.BIND],
        ], name
        assert [r.seq for r in rows] == [r.seq for r in everything if r.seq >= rows[0].seq], name
        facts = {str(f.value) for row in rows for f in row.facts}
        assert not {world.merchant_a.mid, world.agent_a.code} & facts, (name, facts)
        assert not {r.event_type for r in rows} & {
            EVENT_OF[Command.DEACTIVATE],
            EVENT_OF[Command.DEREGISTER],
            EVENT_OF[Command.REFURBISH],
        }, name
    # the earlier merchant and agent no longer see the terminal at all
    for name in ("merchant_a", "agent_a"):
        with pytest.raises(NotFound):
            terminal_timeline(world.user(name), sn)


def test_an_agent_reads_a_terminal_from_when_it_came_into_its_subtree(world):
    """Allocated to agent A, pulled back, allocated to agent B: agent B reads from its allocation."""
    sn = "SN-TL-P001"
    make_terminal(world, sn, Status.ALLOCATED, agent=world.agent_a)
    walk(world, sn, [Command.PULL_BACK])
    walk(world, sn, [Command.ALLOCATE], merchant=world.merchant_b)
    rows = terminal_timeline(world.user("agent_b"), sn).entries()
    assert [(r.event_type, [str(f.value) for f in r.facts]) for r in rows] == [
        (EVENT_OF[Command.ALLOCATE], [world.agent_b.code])
    ]
    assert len(terminal_timeline(world.user("admin"), sn).entries()) == 4  # import, A, pull back, B
