"""The issue's browser scenario: log in with the password and a TOTP code, search a terminal,
deactivate two with a reason (the login's code is a fresh step-up, docs/adr/0020), see the new status
and the timeline, switch to English; once the step-up has run out, a wrong code changes nothing."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from posfleet.audit.models import AuditEvent
from posfleet.audit.verify import verify_chain
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import Terminal
from posfleet.fleet.states import Status
from posfleet.testing.browser import let_step_up_lapse, log_in
from posfleet.testing.personas import build_world, make_terminal
from posfleet.testing.totp import code_at

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fleet():
    world = build_world()
    admin = world.user("admin")
    admin.language = "zh-hans"
    admin.save(update_fields=["language"])
    for i in range(1, 6):
        make_terminal(world, f"SN-E2E-{i:04d}", Status.ACTIVE)
    make_terminal(world, "SN-OTHER-0001", Status.ACTIVE, merchant=world.merchant_b)
    return world


def test_deactivate_two_terminals_with_reason_and_totp(page, live_server, fleet):
    base = live_server.url
    log_in(page, base, "admin")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert "设备管理" in page.content()  # Chinese by default

    page.goto(f"{base}/console/terminals/")
    page.fill("input[name=q]", "SN-E2E")
    expect(page.locator("[data-sn]")).to_have_count(5)
    assert page.locator("[data-sn='SN-OTHER-0001']").count() == 0

    page.check("[data-sn='SN-E2E-0001']")
    page.check("[data-sn='SN-E2E-0002']")
    page.locator("[data-testid=bulk-toolbar] [data-action=deactivate]").first.click()
    dialog = page.locator("[data-testid=action-dialog]")
    dialog.wait_for()
    assert dialog.locator("[data-applies=true]").count() == 2
    page.select_option("select[name=reason]", "technology_update")
    page.fill("textarea[name=note]", "新机型替换")
    expect(dialog.get_by_test_id("step-up-fresh")).to_be_visible()  # verified at login a moment ago
    assert dialog.locator("input[name=totp]").count() == 0
    page.click("[data-testid=confirm-action]")

    result = page.locator("[data-testid=action-result]")
    result.wait_for()
    for sn in ("SN-E2E-0001", "SN-E2E-0002"):
        assert result.locator(f"[data-testid=result-{sn}]").get_attribute("data-ok") == "true"
    assert dict(Terminal.objects.filter(sn__startswith="SN-E2E").values_list("sn", "status")) == {
        "SN-E2E-0001": "deactivated",
        "SN-E2E-0002": "deactivated",
        "SN-E2E-0003": "active",
        "SN-E2E-0004": "active",
        "SN-E2E-0005": "active",
    }
    page.click("[data-testid=close-result]")
    expect(page.locator("[data-testid=status-SN-E2E-0001]")).to_have_text("已停用")

    page.goto(f"{base}/console/terminals/SN-E2E-0001/")
    timeline = page.locator("[data-testid=timeline]")
    assert "停用" in timeline.inner_text()
    assert "新机型替换" in timeline.inner_text()
    event = AuditEvent.objects.filter(
        event_type=EventType.TERMINAL_DEACTIVATED, subject_id="SN-E2E-0001"
    ).get()
    assert (event.reason, event.actor_label, event.note) == ("technology_update", "admin", "新机型替换")

    page.click("[data-testid=language-switch]")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert (
        "Deactivated" in page.locator("[data-testid=timeline]").inner_text()
        or "deactivated" in page.locator("[data-testid=timeline]").inner_text()
    )
    page.goto(f"{base}/console/terminals/")
    assert "Device management" in page.content()
    fleet.users["admin"].refresh_from_db()
    assert fleet.users["admin"].language == "en"
    assert verify_chain().ok


def test_deactivation_without_totp_changes_nothing(page, live_server, fleet):
    base = live_server.url
    log_in(page, base, "merchant_a")
    let_step_up_lapse(page)
    page.goto(f"{base}/console/terminals/SN-E2E-0003/")
    page.locator("[data-testid=terminal-actions] [data-action=deactivate]").click()
    page.locator("[data-testid=action-dialog]").wait_for()
    page.select_option("select[name=reason]", "cost")
    page.fill("input[name=totp]", "000000" if code_at(time.time()) != "000000" else "111111")
    page.click("[data-testid=confirm-action]")
    page.locator(
        "[data-testid=action-dialog] .alert-danger, [data-testid=action-dialog] .invalid-feedback"
    ).first.wait_for()
    assert Terminal.objects.get(sn="SN-E2E-0003").status == Status.ACTIVE
    assert not AuditEvent.objects.filter(event_type=EventType.TERMINAL_DEACTIVATED).exists()


def test_a_merchant_sees_only_its_own_terminals(page, live_server, fleet, browser_errors):
    base = live_server.url
    log_in(page, base, "merchant_b")
    page.goto(f"{base}/console/terminals/")
    page.wait_for_selector("[data-sn]")
    assert sorted(page.locator("[data-sn]").evaluate_all("els => els.map(e => e.dataset.sn)")) == [
        "SN-OTHER-0001"
    ]
    response = page.goto(f"{base}/console/terminals/SN-E2E-0001/")
    assert response.status == 404
    assert browser_errors == [
        "Failed to load resource: the server responded with a status of 404 (Not Found)"
    ]
    browser_errors.clear()
