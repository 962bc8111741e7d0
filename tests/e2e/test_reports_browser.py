"""Issue 14 (points 5 and 6) in a browser: an agent opens its own page from its menu, then a report,
switches to the table and downloads the report as CSV (in Chinese) and as Excel (in English): the
files hold the table's rows, and no script or CSP error shows up."""

from __future__ import annotations

import csv
import io

import pytest
import time_machine
from openpyxl import load_workbook
from playwright.sync_api import expect

from posfleet.platform.context import Actor
from posfleet.reports.tests.world import NOW, build_history
from posfleet.testing.browser import log_in
from posfleet.testing.personas import build_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def history():
    with time_machine.travel(NOW, tick=True):  # the server reads the same clock: the history is recent
        world = build_world()
        agent = world.user("agent_a")
        agent.language = "zh-hans"
        agent.save(update_fields=["language"])
        build_history(world, lambda user: Actor.for_user(user))
        yield world


def table_rows(page) -> list[list[str]]:
    rows = page.get_by_test_id("report-table").locator("tbody tr")
    return [
        [cell.get_attribute("data-value") or "" for cell in rows.nth(i).locator("td").all()]
        for i in range(rows.count())
    ]


def test_an_agent_reads_its_page_and_a_report_and_downloads_it_in_both_languages(page, live_server, history):
    base = live_server.url  # the clock is the history's (the fixture travels to NOW)
    log_in(page, base, "agent_a")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    page.locator("[data-nav=reports]").click()
    page.locator("[data-nav=my_agent]").click()
    expect(page.get_by_test_id("agent-title")).to_contain_text("AG-A")
    expect(page.get_by_test_id("kpi-terminals")).to_have_text("5")
    expect(page.locator("canvas[data-report-chart=volume]")).to_be_visible()

    page.get_by_test_id("agent-volume-report").click()
    expect(page.get_by_test_id("report-chart")).to_be_visible()
    expect(page.get_by_test_id("report-table")).to_be_hidden()
    page.get_by_test_id("view-table").click()
    expect(page.get_by_test_id("report-table")).to_be_visible()
    shown = table_rows(page)
    assert len(shown) == 3  # merchant A's and A1's approved sales by month and method, not B's
    assert "支付方式" in page.get_by_test_id("report-table").inner_text()

    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    written = list(csv.reader(io.StringIO(download.value.path().read_text(encoding="utf-8-sig"))))
    header = written[0]
    keys = [cell.get_attribute("data-key") for cell in page.locator("tbody tr").first.locator("td").all()]
    assert [[row[header.index(k)] for k in keys] for row in written[1:]] == shown

    page.get_by_test_id("language-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_test_id("view-table").click()
    expect(page.get_by_test_id("report-table")).to_contain_text("Payment method")
    english = table_rows(page)
    assert [row[:1] + row[2:] for row in english] == [row[:1] + row[2:] for row in shown]  # the same figures
    assert "credit card" in [row[1] for row in english]  # the payment method in English words now
    with page.expect_download() as download:
        page.get_by_test_id("export-xlsx").click()
    assert download.value.suggested_filename.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(download.value.path().read_bytes())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == len(shown) + 1
    assert [str(row[rows[0].index("month")]) for row in rows[1:]] == [row[0] for row in shown]
