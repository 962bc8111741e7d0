"""The device list's status filter says how many statuses are ticked — statuses, not terminals — as
boxes are ticked, in the reader's language."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from posfleet.fleet.states import Status
from posfleet.testing.browser import log_in
from posfleet.testing.personas import build_world, make_terminal

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("language", "one", "two", "all_"),
    [
        ("zh-hans", "已选 1 种状态", "已选 2 种状态", "全部状态"),
        ("en", "1 status selected", "2 statuses selected", "All statuses"),
    ],
)
def test_the_status_filter_counts_the_statuses_ticked(page, live_server, language, one, two, all_):
    world = build_world()
    for i in range(1, 4):
        make_terminal(world, f"SN-STF-{i:04d}", Status.ACTIVE)
    admin = world.user("admin")
    admin.language = language
    admin.save(update_fields=["language"])
    log_in(page, live_server.url, "admin")
    page.goto(f"{live_server.url}/console/terminals/")
    summary = page.get_by_test_id("status-filter-summary")
    expect(summary).to_have_text(all_)

    page.get_by_test_id("status-filter").click()
    page.check("#status-active")  # three terminals are active: the filter still says one status
    expect(summary).to_have_text(one)
    page.check("#status-deactivated")
    expect(summary).to_have_text(two)
    page.uncheck("#status-active")
    page.uncheck("#status-deactivated")
    expect(summary).to_have_text(all_)
