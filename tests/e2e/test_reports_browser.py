"""Issue 14 (points 5 and 6) in a browser, in Chinese and in English: an agent opens its own page from
its menu, then a report, switches to the table and downloads the report as CSV and as Excel: both
files arrive and hold the table's rows; in the other language the table holds the same figures; no
script or CSP error shows up."""

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


OTHER = {"en": "zh-hans", "zh-hans": "en"}
METHOD_HEADER = {"en": "Payment method", "zh-hans": "支付方式"}


@pytest.fixture(params=["zh-hans", "en"])
def history(request):
    with time_machine.travel(NOW, tick=True):  # the server reads the same clock: the history is recent
        world = build_world()
        agent = world.user("agent_a")
        agent.language = request.param
        agent.save(update_fields=["language"])
        build_history(world, lambda user: Actor.for_user(user))
        yield request.param


def table_rows(page) -> list[list[str]]:
    rows = page.get_by_test_id("report-table").locator("tbody tr")
    return [
        [cell.get_attribute("data-value") or "" for cell in rows.nth(i).locator("td").all()]
        for i in range(rows.count())
    ]


def test_an_agent_reads_its_page_and_a_report_and_downloads_it(page, live_server, history):
    language = history
    base = live_server.url  # the clock is the history's (the fixture travels to NOW)
    log_in(page, base, "agent_a")
    expect(page.locator("html")).to_have_attribute("lang", language)
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
    assert METHOD_HEADER[language] in page.get_by_test_id("report-table").inner_text()
    keys = [cell.get_attribute("data-key") for cell in page.locator("tbody tr").first.locator("td").all()]

    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    assert download.value.suggested_filename.endswith(".csv")
    written = list(csv.reader(io.StringIO(download.value.path().read_text(encoding="utf-8-sig"))))
    header = written[0]
    assert [[row[header.index(k)] for k in keys] for row in written[1:]] == shown

    with page.expect_download() as download:
        page.get_by_test_id("export-xlsx").click()
    assert download.value.suggested_filename.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(download.value.path().read_bytes())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == len(shown) + 1
    assert [str(row[rows[0].index("month")]) for row in rows[1:]] == [row[0] for row in shown]
    assert [row[rows[0].index("method_label")] for row in rows[1:]] == [row[1] for row in shown]

    page.get_by_test_id("language-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", OTHER[language])
    page.get_by_test_id("view-table").click()
    expect(page.get_by_test_id("report-table")).to_contain_text(METHOD_HEADER[OTHER[language]])
    other = table_rows(page)
    assert [row[:1] + row[2:] for row in other] == [row[:1] + row[2:] for row in shown]  # the same figures
    english = other if language == "zh-hans" else shown
    assert "credit card" in [row[1] for row in english]  # the payment method in English words
