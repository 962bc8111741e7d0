"""Device management list: filters, sorting, pagination, htmx partials and the address bar."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from posfleet.console.tests.helpers import SN_A, SN_A1, SN_B, htmx, ids_with_prefix
from posfleet.fleet.models import TerminalModel
from posfleet.fleet.services import NewTerminal, terminals_register_batch
from posfleet.fleet.states import Status
from posfleet.testing.personas import SYSTEM, make_terminal

LIST = "/console/terminals/"


def sns_in(html: str) -> list[str]:
    """The serial numbers of the rows, in order."""
    return re.findall(r'data-row-sn="([^"]+)"', html)


@pytest.fixture
def stock(clock, world):
    """120 terminals in stock: two models, expiry dates 1..120 days from 2027-01-01."""
    other = TerminalModel.objects.create(
        code="newland-me31", maker="Newland", name="ME31", kind="traditional"
    )
    base = date(2027, 1, 1)
    terminals_register_batch(
        actor=SYSTEM,
        batch="B-TEST",
        terminals=[
            NewTerminal(
                sn=f"SN-STOCK-{i:04d}",
                model_id=(world.model if i % 2 else other).pk,
                service_expires_on=base + timedelta(days=i),
            )
            for i in range(1, 121)
        ],
    )
    return other


def test_first_page_has_fifty_rows_and_a_pager(stock, login):
    html = login("admin").get(LIST).content.decode()
    rows = sns_in(html)
    assert len(rows) == 50
    assert rows[:2] == ["SN-STOCK-0001", "SN-STOCK-0002"]
    assert "Showing 1–50 of 120 terminals" in html
    assert "Page 1 of 3" in html
    assert 'data-page="next"' in html


def test_last_page(stock, login):
    html = login("admin").get(LIST, {"page": 3}).content.decode()
    assert sns_in(html) == [f"SN-STOCK-{i:04d}" for i in range(101, 121)]
    assert "Showing 101–120 of 120 terminals" in html


def test_a_page_beyond_the_end_shows_the_last_page(stock, login):
    assert sns_in(login("admin").get(LIST, {"page": 99}).content.decode())[-1] == "SN-STOCK-0120"


def test_search_by_a_part_of_an_sn_or_tid(clock, terminals, login):
    client = login("admin")
    assert sns_in(client.get(LIST, {"q": "sn-con-a"}).content.decode()) == [SN_A, SN_A1]
    assert sns_in(client.get(LIST, {"q": "con-a"}).content.decode()) == [SN_A, SN_A1]  # anywhere
    assert sns_in(client.get(LIST, {"q": "on"}).content.decode()) == []  # two characters: the start only
    tid = terminals[SN_B].tid
    assert sns_in(client.get(LIST, {"q": tid}).content.decode()) == [SN_B]


def test_filter_by_several_statuses(clock, world, terminals, login):
    make_terminal(world, "SN-SUSP-1", Status.SUSPENDED)
    make_terminal(world, "SN-STK-1", Status.IN_STOCK)
    html = login("admin").get(LIST, {"status": ["suspended", "in_stock"]}).content.decode()
    assert sns_in(html) == ["SN-STK-1", "SN-SUSP-1"]
    assert "2 filters applied" not in html
    assert "1 filter applied" in html
    assert 'value="suspended" id="status-suspended" checked' in html


def test_filter_by_model_agent_merchant_and_expiry(stock, terminals, login):
    client = login("admin")
    by_model = sns_in(client.get(LIST, {"model": "newland-me31", "page": 1}).content.decode())
    assert by_model[:2] == ["SN-STOCK-0002", "SN-STOCK-0004"]
    assert sns_in(client.get(LIST, {"agent": "AG-A1"}).content.decode()) == [SN_A1]
    assert sns_in(client.get(LIST, {"merchant": "100000000000002"}).content.decode()) == [SN_B]
    window = {"sim_from": "2027-01-05", "sim_to": "2027-01-07"}
    assert sns_in(client.get(LIST, window).content.decode()) == [
        "SN-STOCK-0004",
        "SN-STOCK-0005",
        "SN-STOCK-0006",
    ]


def test_invalid_filter_values_are_ignored(stock, login):
    response = login("admin").get(
        LIST, {"sim_from": "not-a-date", "status": "nonsense", "sort": "evil", "page": "x"}
    )
    assert response.status_code == 200
    assert len(sns_in(response.content.decode())) == 50


@pytest.mark.parametrize(
    "column", ["sn", "tid", "status", "model", "agent", "merchant", "sim_expiry", "changed"]
)
def test_every_column_sorts_both_ways(clock, terminals, login, column):
    client = login("admin")
    up = client.get(LIST, {"sort": column}).content.decode()
    down = client.get(LIST, {"sort": f"-{column}"}).content.decode()
    assert set(sns_in(up)) == set(sns_in(down)) == {SN_A, SN_A1, SN_B}
    assert f'data-sort="{column}"' in up
    header = up.split(f'data-sort="{column}"')[0].rsplit("<th", 1)[1]
    assert 'aria-sort="ascending"' in header


def test_sort_by_sim_expiry_descending(stock, login):
    rows = sns_in(login("admin").get(LIST, {"sort": "-sim_expiry"}).content.decode())
    assert rows[:3] == ["SN-STOCK-0120", "SN-STOCK-0119", "SN-STOCK-0118"]


def test_sort_links_keep_the_filters(stock, login):
    html = login("admin").get(LIST, {"model": "pax-a920", "q": "SN-STOCK"}).content.decode()
    assert 'href="/console/terminals/?q=SN-STOCK&amp;model=pax-a920&amp;sort=tid"' in html
    assert 'href="/console/terminals/?q=SN-STOCK&amp;model=pax-a920&amp;page=2"' in html


def test_htmx_request_gets_the_table_only_and_a_clean_address(stock, login):
    client = login("admin")
    response = client.get(
        LIST + "?q=&model=&status=&sort=sn&page=2",
        **htmx(HTTP_HX_CURRENT_URL="http://testserver/console/terminals/"),
    )
    html = response.content.decode()
    assert "<html" not in html
    assert 'id="filter-form"' not in html
    assert sns_in(html)[0] == "SN-STOCK-0051"
    assert response["HX-Push-Url"] == "/console/terminals/?page=2"
    assert "HX-Request" in response["Vary"]


def test_refresh_of_the_same_address_adds_no_history(stock, login):
    response = login("admin").get(
        LIST + "?page=2", **htmx(HTTP_HX_CURRENT_URL="http://testserver/console/terminals/?page=2")
    )
    assert response["HX-Push-Url"] == "false"


def test_history_restore_gets_the_whole_page(stock, login):
    response = login("admin").get(LIST, **htmx(HTTP_HX_HISTORY_RESTORE_REQUEST="true"))
    assert "<html" in response.content.decode()


def test_empty_states(clock, world, login, terminals):
    client = login("merchant_b")
    html = client.get(LIST, {"q": "NOTHING-LIKE-THIS"}).content.decode()
    assert "No terminals match these filters" in html
    assert "Reset filters" in html
    empty_world = login("agent_a1")
    # agent A1 has one terminal; hide it with a filter and check there is no pager and no table
    html = empty_world.get(LIST, {"status": "blocked"}).content.decode()
    assert "No terminals match these filters" in html
    assert 'data-testid="terminal-table"' not in html


def test_merchant_has_no_agent_or_merchant_filter(clock, terminals, login):
    html = login("merchant_a").get(LIST).content.decode()
    assert 'name="agent"' not in html
    assert 'name="merchant"' not in html
    assert 'name="q"' in html
    agent_html = login("agent_a").get(LIST).content.decode()
    assert 'value="AG-A"' in agent_html
    assert 'value="AG-A1"' in agent_html
    assert 'value="AG-B"' not in agent_html  # another agent is not even a filter option


def test_key_elements_for_the_browser_tests(clock, terminals, login):
    html = login("admin").get(LIST).content.decode()
    assert 'name="q"' in html
    assert ids_with_prefix(html, "status-") >= {SN_A, SN_A1, SN_B}
    for sn in (SN_A, SN_A1, SN_B):
        assert f'data-sn="{sn}"' in html
    assert 'data-action="deactivate"' in html
    assert 'data-testid="select-all"' in html
    assert 'hx-push-url="true"' in html


def test_list_queries_do_not_grow_with_rows(stock, login, django_assert_max_num_queries):
    client = login("admin")
    client.get(LIST)  # warm the session
    with django_assert_max_num_queries(13):  # 12, and the selection's count (ADR 0029)
        html = client.get(LIST).content.decode()
    assert len(sns_in(html)) == 50
