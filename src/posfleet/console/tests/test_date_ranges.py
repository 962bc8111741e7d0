"""Every console page filtered by a from/to range refuses a range that ends before it starts: it says so
and shows no results (and an export of such a search exports nothing), instead of an empty list that
looks like "nothing there" or a silently swapped range."""

from __future__ import annotations

import re
from datetime import date

import pytest

from posfleet.audit.models import AuditEvent
from posfleet.console.tests.helpers import SN_A
from posfleet.console.tests.test_money_access import MID_A, money  # noqa: F401  (fixture)
from posfleet.fleet.models import Terminal
from posfleet.platform.models import Job

pytestmark = pytest.mark.django_db

EN = {"Accept-Language": "en"}


def range_error(html: str) -> str:
    found = re.search(r'data-testid="range-error"[^>]*>(.*?)</div>', html, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)).strip() if found else ""


@pytest.fixture
def expiring(terminals):
    Terminal.objects.filter(sn=SN_A).update(service_expires_on=date(2031, 4, 1))
    return terminals


@pytest.mark.parametrize("htmx", [False, True])
def test_the_terminal_list_refuses_an_inverted_sim_expiry_range(clock, expiring, login, htmx):
    client = login("admin")
    headers = {**EN, **({"HX-Request": "true"} if htmx else {})}
    ordered = client.get(
        "/console/terminals/", {"sim_from": "2031-03-01", "sim_to": "2031-05-01"}, headers=headers
    )
    html = ordered.content.decode()
    assert f'data-sn="{SN_A}"' in html
    assert range_error(html) == ""
    inverted = client.get(
        "/console/terminals/", {"sim_from": "2031-05-01", "sim_to": "2031-03-01"}, headers=headers
    )
    assert inverted.status_code == 200
    html = inverted.content.decode()
    assert range_error(html) == "The start of the range (2031-05-01) is after its end (2031-03-01)."
    assert "data-sn=" not in html
    assert "No terminals" in html


def test_the_terminal_export_refuses_an_inverted_range_and_starts_no_job(clock, expiring, login):
    client = login("admin")
    got = client.post(
        "/console/terminals/export/",
        {"format": "csv", "sim_from": "2031-05-01", "sim_to": "2031-03-01"},
        headers=EN,
        follow=True,
    )
    assert got.redirect_chain == [("/console/terminals/?sim_from=2031-05-01&sim_to=2031-03-01", 302)]
    assert "The start of the range (2031-05-01) is after its end (2031-03-01)." in got.content.decode()
    assert not Job.objects.exists()


def test_the_transaction_search_refuses_an_inverted_date_range(money, login):  # noqa: F811
    client = login("admin")
    ordered = client.get(
        "/console/transactions/", {"date_from": "2026-10-05", "date_to": "2026-10-06"}, headers=EN
    )
    assert 'data-txn="' in ordered.content.decode()
    inverted = client.get(
        "/console/transactions/", {"date_from": "2026-10-06", "date_to": "2026-10-05"}, headers=EN
    )
    html = inverted.content.decode()
    assert range_error(html) == "The start of the range (2026-10-06) is after its end (2026-10-05)."
    assert 'data-txn="' not in html


def test_the_transaction_export_refuses_an_inverted_date_range(money, login):  # noqa: F811
    audit = AuditEvent.objects.count()
    got = login("admin").get(
        "/console/transactions/export/csv/", {"date_from": "2026-10-06", "date_to": "2026-10-05"}, headers=EN
    )
    assert got.status_code == 422
    assert got["Content-Type"] == "text/plain; charset=utf-8"
    assert got.content.decode() == "The start of the range (2026-10-06) is after its end (2026-10-05)."
    assert AuditEvent.objects.count() == audit  # no export was made, so none is audited


def test_the_comparison_refuses_an_inverted_month_range(money, login):  # noqa: F811
    client = login("merchant_a")
    url = f"/console/merchants/{MID_A}/compare/"
    ordered = client.get(url, {"start": "2026-09", "end": "2026-10"}, headers=EN).content.decode()
    assert 'data-testid="compare-table"' in ordered
    assert range_error(ordered) == ""
    inverted = client.get(url, {"start": "2026-10", "end": "2026-09"}, headers=EN)
    assert inverted.status_code == 200
    html = inverted.content.decode()
    assert range_error(html) == "The start of the range (2026-10) is after its end (2026-09)."
    assert 'data-testid="compare-table"' not in html
    assert 'data-testid="conclusion"' not in html
    # The form keeps what was typed, so that it can be corrected.
    assert 'name="start" value="2026-10"' in html
    assert 'name="end" value="2026-09"' in html
