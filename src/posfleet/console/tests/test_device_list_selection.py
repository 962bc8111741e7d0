"""The device list acts on many: a selection kept across searches and pages (ticked, pasted as SNs,
every match of a filter; ADR 0029), the bulk actions over all of it as one job with a summary, and the
dormant filter (no approved sale in N days), the same rule as the API's."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from posfleet.api.tests.helpers import Api, new_token
from posfleet.billing.services.transactions import TxnIn, transactions_ingest
from posfleet.console import selection
from posfleet.console.models import TerminalSelection
from posfleet.console.tests.helpers import SN_A, SN_A1, SN_B, T0, htmx, trace
from posfleet.fleet.models import Terminal
from posfleet.fleet.services import NewTerminal, terminal_transition, terminals_register_batch
from posfleet.fleet.states import Status
from posfleet.platform import jobs
from posfleet.platform.context import Actor
from posfleet.platform.models import Job
from posfleet.testing.money import on_standard_plan
from posfleet.testing.personas import SYSTEM, make_terminal

LIST = "/console/terminals/"
SELECTION = "/console/terminals/selection/"
START = datetime.fromtimestamp(T0, tz=UTC)


def sns_in(html: str) -> list[str]:
    return re.findall(r'data-row-sn="([^"]+)"', html)


def checked_in(html: str) -> set[str]:
    return set(re.findall(r'data-sn="([^"]+)" checked', html))


def selected_of(user) -> set[str]:
    return set(TerminalSelection.objects.filter(user=user).values_list("terminal__sn", flat=True))


def count_shown(html: str) -> int:
    return int(re.search(r'data-testid="selection-count" data-count="(\d+)"', html).group(1))


def test_pasted_sns_select_exactly_those_and_the_unknown_ones_are_reported(
    clock, terminals, login, world, monkeypatch
):
    agent = login("agent_a")
    pasted = f"{SN_A.lower()}\n{SN_A1}, {SN_B}  NOPE-1；nope-1"  # B's terminal is not agent A's to select
    response = agent.post(SELECTION, {"op": "paste", "sns": pasted}, **htmx())
    html = response.content.decode()
    assert selected_of(world.user("agent_a")) == {SN_A, SN_A1}
    assert count_shown(html) == 2
    assert "4 SNs pasted: 2 found, 2 added to the selection." in html
    assert 'data-testid="unknown-sns" data-count="2"' in html
    assert re.findall(r'data-unknown="([^"]+)"', html) == [SN_B, "NOPE-1"]
    assert response["HX-Trigger"] == "selection-changed"  # the rows' ticks follow
    assert TerminalSelection.objects.exclude(user=world.user("agent_a")).count() == 0

    # beyond the bound: refused in words, nothing added
    monkeypatch.setattr(selection, "SELECTION_MAX", 2)
    admin = login("admin")
    admin.post(SELECTION, {"op": "paste", "sns": SN_A}, **htmx())
    html = admin.post(SELECTION, {"op": "paste", "sns": f"{SN_A1} {SN_B}"}, **htmx()).content.decode()
    assert "A selection holds at most 2 terminals: it has 1 and these would add 2." in html
    assert selected_of(world.user("admin")) == {SN_A}


def test_the_selection_survives_a_new_search_and_is_shown_ticked(clock, terminals, login, world):
    admin = login("admin")
    admin.post(SELECTION, {"op": "paste", "sns": SN_A})
    other_search = admin.get(LIST, {"q": "SN-CON-B"}).content.decode()
    assert sns_in(other_search) == [SN_B]
    assert checked_in(other_search) == set()
    assert count_shown(other_search) == 1
    admin.post(SELECTION, {"op": "add", "sns": SN_B}, **htmx())  # a tick on that page
    html = admin.get(LIST, {"page": 1}).content.decode()
    assert checked_in(html) == {SN_A, SN_B}
    assert count_shown(html) == 2
    assert sns_in(admin.get(LIST, {"selected": "1"}).content.decode()) == [SN_A, SN_B]
    admin.post(SELECTION, {"op": "remove", "sns": SN_A}, **htmx())
    assert sns_in(admin.get(LIST, {"selected": "1"}).content.decode()) == [SN_B]
    # without JavaScript the paste form is a plain POST: the list again, saying what happened
    plain = admin.post(SELECTION, {"op": "paste", "sns": SN_A1, "query": "q=CON"}).content.decode()
    assert "1 SN pasted: 1 found, 1 added to the selection." in plain
    assert count_shown(plain) == 2
    login("admin")  # a new sign-in starts afresh
    assert selected_of(world.user("admin")) == set()


@pytest.fixture
def stock(world, settings, monkeypatch):
    """32 terminals in stock, 2 of them already allocated to agent B; lists of 20 a page; a job above 3
    terminals, 10 at a time."""
    settings.POSFLEET = {**settings.POSFLEET, "BULK_SYNC_MAX": 3, "BULK_MAX_ITEMS": 10}
    monkeypatch.setattr("posfleet.console.views.terminals.PAGE_SIZE", 20)
    sns = [f"SN-ALL-{i:04d}" for i in range(1, 33)]
    terminals_register_batch(
        actor=SYSTEM, batch="B-ALL", terminals=[NewTerminal(sn=sn, model_id=world.model.pk) for sn in sns]
    )
    for sn in sns[-2:]:
        terminal_transition(actor=SYSTEM, sn=sn, action="allocate", params={"agent_code": "AG-B"})
    make_terminal(world, "SN-OTHER-0001")  # in stock, not a match
    return sns


def test_act_on_every_match_runs_one_job_and_refusals_change_nothing(clock, stock, login):
    admin = login("admin")
    first = admin.get(LIST, {"q": "SN-ALL"}).content.decode()
    assert "Showing 1–20 of 32 terminals" in first
    assert "Page 1 of 2" in first
    toolbar = admin.post(SELECTION, {"op": "add_matches", "q": "SN-ALL"}, **htmx()).content.decode()
    assert count_shown(toolbar) == 32

    dialog = admin.get("/console/terminals/actions/allocate/?scope=selection", **htmx()).content.decode()
    assert 'data-testid="selected-count" data-count="32"' in dialog
    assert 'data-testid="applicable-count" data-count="30"' in dialog
    digest = re.search(r'name="digest" value="([0-9a-f]+)"', dialog).group(1)
    before = trace(*stock)
    form = {"scope": "selection", "agent_code": "AG-A", "note": "season"}

    # a dialog whose selection changed meanwhile does nothing
    stale = admin.post("/console/terminals/actions/allocate/", {**form, "digest": "0" * 32}, **htmx())
    assert "The selection changed since this dialog opened" in stale.content.decode()
    # a destructive command without its code does nothing either
    lost = {"scope": "selection", "reason": "lost", "digest": digest}
    admin.post("/console/terminals/actions/report_lost/", lost, **htmx())
    assert trace(*stock) == before
    assert not Job.objects.exists()

    refused_before = trace(*stock[30:])[:2]
    running = admin.post("/console/terminals/actions/allocate/", {**form, "digest": digest}, **htmx())
    assert 'data-testid="action-running"' in running.content.decode()
    job = Job.objects.get()
    assert (job.kind, job.total, len(job.params["sns"])) == ("fleet.bulk_transition", 32, 32)
    assert jobs.run(str(job.pk)).done == 32  # the worker: 4 chunks of 10, one bar

    allocated = dict(Terminal.objects.filter(sn__in=stock).values_list("sn", "agent__code"))
    assert allocated == {sn: "AG-A" for sn in stock[:30]} | {sn: "AG-B" for sn in stock[30:]}
    assert trace(*stock[30:])[:2] == refused_before  # statuses and audit rows of the refused two
    result = admin.get(f"/console/jobs/{job.pk}/?dialog=allocate", **htmx()).content.decode()
    assert result.count('data-ok="true"') == 30
    reasons = re.findall(r'data-code="([a-z_]+)" data-count="(\d+)"', result)
    assert reasons == [("transition_not_allowed", "2")]


def _sale(terminal: Terminal, trace_no: int, days_ago: int, **kw: object) -> TxnIn:
    at = START - timedelta(days=days_ago)
    values: dict[str, object] = {
        "tid": terminal.tid or "",
        "batch_no": "000001",
        "trace_no": f"{trace_no:06d}",
        "txn_date": timezone.localdate(at),
        "occurred_at": at,
        "method": "credit",
        "entry_mode": "insert",
        "amount_fen": 10_000,
        "card_masked": "622202******1234",
    }
    values.update(kw)
    return TxnIn(**values)  # type: ignore[arg-type]


def test_dormant_terminals_have_no_approved_sale_in_the_window(clock, world, login):
    with time_machine.travel(START - timedelta(days=100), tick=False):
        t = {n: make_terminal(world, f"SN-DRM-{n}", Status.ACTIVE) for n in range(1, 6)}
    on_standard_plan(world.merchant_a)
    old_sale = _sale(t[5], 6, 40)
    results = transactions_ingest(
        actor=Actor.job("test-dormant"),
        items=[
            _sale(t[1], 1, 10),  # sold 10 days ago
            _sale(t[2], 2, 40),  # sold 40 days ago
            _sale(t[3], 3, 5, status="declined", response_code="51"),  # only a decline
            # t[4]: nothing at all
            old_sale,
            _sale(t[5], 7, 5, kind="refund", amount_fen=1_000, original=old_sale.key),  # a refund is no sale
        ],
    )
    assert all(r.ok for r in results), [r.detail for r in results if not r.ok]
    admin = login("admin")

    def listed(**query: str) -> set[str]:
        return set(sns_in(admin.get(LIST, {"q": "SN-DRM", **query}).content.decode()))

    assert listed(dormant="1") == {"SN-DRM-2", "SN-DRM-3", "SN-DRM-4", "SN-DRM-5"}  # 30 days by default
    assert listed(dormant="1", dormant_days="60") == {"SN-DRM-3", "SN-DRM-4"}
    assert listed(dormant_days="60") == {f"SN-DRM-{n}" for n in range(1, 6)}  # the box unticked: no filter
    bad = admin.get(LIST, {"q": "SN-DRM", "dormant": "1", "dormant_days": "0"}).content.decode()
    assert 'data-testid="range-error"' in bad
    assert sns_in(bad) == []
    # the export cannot take it: refused, no job
    response = admin.post("/console/terminals/export/", {"format": "csv", "q": "SN-DRM", "dormant": "1"})
    assert response.status_code == 302
    assert not Job.objects.exists()

    api = Api(new_token(world.user("admin")))
    body = api.get("/terminals", {"q": "SN-DRM", "dormant_days": 30}).json()
    assert {item["sn"] for item in body["items"]} == {"SN-DRM-2", "SN-DRM-3", "SN-DRM-4", "SN-DRM-5"}
    assert api.get("/terminals", {"dormant_days": 0}).status_code == 422
