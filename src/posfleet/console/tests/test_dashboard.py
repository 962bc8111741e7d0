"""The dashboard: counts and charts scoped to the user, expiring SIMs, recent changes."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from posfleet.console.tests.helpers import SN_A, SN_A1, SN_B
from posfleet.fleet.models import Terminal
from posfleet.fleet.services import terminal_resume, terminal_suspend
from posfleet.fleet.states import Status
from posfleet.platform.clock import today
from posfleet.testing.personas import SYSTEM, make_terminal


def chart_data(html: str) -> dict:
    raw = re.search(r'<script id="dashboard-data" type="application/json">(.*?)</script>', html, re.S)
    assert raw is not None
    return json.loads(raw.group(1))


@pytest.fixture
def fleet(clock, world, terminals):
    make_terminal(world, "SN-DASH-STOCK", Status.IN_STOCK)
    terminal_suspend(actor=SYSTEM, sn=SN_B, reason="risk")
    Terminal.objects.filter(sn=SN_A).update(service_expires_on=today() + timedelta(days=3))
    Terminal.objects.filter(sn=SN_B).update(service_expires_on=today() + timedelta(days=20))
    Terminal.objects.filter(sn=SN_A1).update(service_expires_on=today() + timedelta(days=45))
    return world


def test_admin_sees_the_whole_fleet(fleet, login):
    html = login("admin").get("/console/").content.decode()
    data = chart_data(html)
    assert dict(zip(data["status"]["codes"], data["status"]["values"], strict=True)) == {
        "in_stock": 1,
        "active": 2,
        "suspended": 1,
    }
    assert data["status"]["labels"] == ["in stock", "active", "suspended"]
    assert data["model"] == {"labels": ["PAX A920"], "values": [4]}
    assert len(data["activity"]["values"]) == 30
    assert 'data-testid="kpi-total">4<' in html
    assert 'data-testid="kpi-expiring">2<' in html


def test_agent_sees_only_its_scope(fleet, login):
    html = login("agent_a").get("/console/").content.decode()
    data = chart_data(html)
    assert dict(zip(data["status"]["codes"], data["status"]["values"], strict=True)) == {"active": 2}
    assert 'data-testid="kpi-expiring">1<' in html
    assert SN_B not in html
    latest = html.split('data-testid="latest-events"')[1].split("</ul>")[0]
    assert set(re.findall(r"/console/terminals/([^/]+)/", latest)) == {SN_A, SN_A1}


def test_an_agent_sees_its_own_terminal_and_its_history(fleet, login):
    html = login("agent_b").get("/console/").content.decode()
    data = chart_data(html)
    assert dict(zip(data["status"]["codes"], data["status"]["values"], strict=True)) == {"suspended": 1}
    latest = html.split('data-testid="latest-events"')[1].split("</ul>")[0]
    assert set(re.findall(r"/console/terminals/([^/]+)/", latest)) == {SN_B}
    assert "Suspended" in latest
    assert "risk control" in latest  # the reason's label, from the taxonomy
    # events per day: registration to suspension of SN_B all happened today (the frozen clock)
    assert data["activity"]["values"][-1] == 6
    assert sum(data["activity"]["values"]) == 6


def test_expiring_table_and_link_to_the_filtered_list(fleet, login):
    client = login("admin")
    html = client.get("/console/").content.decode()
    section = html.split('id="expiring-title"')[1]
    assert section.index(SN_A) < section.index(SN_B)
    assert SN_A1 not in section  # 45 days away
    start, end = today(), today() + timedelta(days=30)
    statuses = "".join(f"status={s}&amp;" for s in ("bound", "active", "suspended"))  # in service
    link = (
        f"/console/terminals/?{statuses}sim_from={start.isoformat()}&amp;sim_to={end.isoformat()}"
        "&amp;sort=sim_expiry"
    )
    assert f'href="{link}"' in html
    listed = client.get(link.replace("&amp;", "&")).content.decode()
    assert re.findall(r'data-row-sn="([^"]+)"', listed) == [SN_A, SN_B]


def test_numbers_have_thousands_separators(clock, world, login):
    from posfleet.fleet.services import NewTerminal, terminals_register_batch

    terminals_register_batch(
        actor=SYSTEM,
        batch="B-BIG",
        terminals=[NewTerminal(sn=f"SN-BIG-{i:05d}", model_id=world.model.pk) for i in range(1234)],
    )
    html = login("admin").get("/console/").content.decode()
    assert 'data-testid="kpi-total">1,234<' in html


def test_empty_fleet_shows_empty_states(clock, world, login):
    html = login("agent_b").get("/console/").content.decode()
    assert "No terminals yet" in html
    assert "No changes yet" in html
    assert "Nothing expires in the next 30 days" in html


def test_dashboard_queries_are_few(fleet, login, django_assert_max_num_queries):
    client = login("agent_a")
    client.get("/console/")
    # 13 (the events per day: the stored days' figures, then today's live), the inbox bell's unread
    # count, and django-otp's look-up of the device that verified the session
    with django_assert_max_num_queries(15):
        client.get("/console/")


def test_a_quiet_month_still_shows_the_latest_changes_and_no_activity(fleet, clock, login):
    clock.shift(timedelta(days=60))  # every change of the fixture is now two months old
    html = login("agent_a").get("/console/").content.decode()
    assert sum(chart_data(html)["activity"]["values"]) == 0
    latest = html.split('data-testid="latest-events"')[1].split("</ul>")[0]
    assert set(re.findall(r"/console/terminals/([^/]+)/", latest)) == {SN_A, SN_A1}


def test_the_latest_changes_are_the_newest_of_the_window_when_it_holds_enough(fleet, clock, login):
    clock.shift(timedelta(days=60))
    for _ in range(6):  # 12 changes of SN_A today, after the old ones of SN_A1
        terminal_suspend(actor=SYSTEM, sn=SN_A, reason="risk")
        terminal_resume(actor=SYSTEM, sn=SN_A)
    html = login("agent_a").get("/console/").content.decode()
    assert sum(chart_data(html)["activity"]["values"]) == 12
    latest = html.split('data-testid="latest-events"')[1].split("</ul>")[0]
    assert set(re.findall(r"/console/terminals/([^/]+)/", latest)) == {SN_A}
    assert len(re.findall(r"<li", latest)) == 10


def test_counts_are_a_recount_of_the_scope(clock, world, terminals, login):
    """The doughnut and the model chart count per agent and sum: they equal a count of the terminals
    each user may see, sub-agents' included, others' never."""
    from posfleet.fleet.models import TerminalModel

    other = TerminalModel.objects.create(code="nl-n910", maker="Newland", name="N910", kind="smart")
    make_terminal(world, "SN-DASH-A1-2", Status.SUSPENDED, merchant=world.merchant_a1)
    make_terminal(world, "SN-DASH-B-2", Status.SUSPENDED, merchant=world.merchant_b)
    make_terminal(world, "SN-DASH-STOCK", Status.IN_STOCK)
    Terminal.objects.filter(sn__in=["SN-DASH-A1-2", "SN-DASH-B-2"]).update(model=other)
    for name in ("admin", "agent_a", "agent_a1", "agent_b"):
        data = chart_data(login(name).get("/console/").content.decode())
        visible = Terminal.objects.all() if name == "admin" else _scope(world, name)
        by_status: dict[str, int] = {}
        by_model: dict[str, int] = {}
        for status, model in visible.values_list("status", "model__name"):
            by_status[status] = by_status.get(status, 0) + 1
            by_model[model] = by_model.get(model, 0) + 1
        assert dict(zip(data["status"]["codes"], data["status"]["values"], strict=True)) == by_status, name
        shown = dict(zip(data["model"]["labels"], data["model"]["values"], strict=True))
        assert {label.split(" ", 1)[1]: n for label, n in shown.items()} == by_model, name


def _scope(world, name: str):
    path = world.user(name).organisation.path
    return Terminal.objects.filter(agent__organisation__path__startswith=path)
