"""Issue 14's reviewer in the browser, in Chinese and in English: the queue with its counts, the
application with its documents previewed inline beside their checklists, a rejection with a preset
reason; then the merchant reads the reason in plain words in their language."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.utils import translation
from playwright.sync_api import Page, Route, expect

from posfleet.enrollment import review
from posfleet.enrollment.kyc import Upload
from posfleet.enrollment.services import applications as apps
from posfleet.platform.context import Actor
from posfleet.testing.applications import PDF, more_terminals_request, png
from posfleet.testing.browser import log_in, watched_page
from posfleet.testing.personas import World, build_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def words(language: str, text) -> str:
    with translation.override(language):
        return str(text)


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_reviewer_rejects_with_a_preset_reason_and_the_merchant_reads_it(
    page, browser, browser_errors, live_server, language
):
    world = build_world()
    for name in ("reviewer", "merchant_a"):
        user = world.user(name)
        user.language = language
        user.save(update_fields=["language"])
    number = _submitted(world)
    base = live_server.url

    log_in(page, base, "reviewer")
    page.goto(f"{base}/console/applications/")
    expect(page.get_by_test_id("count-review")).to_have_text("1")
    expect(page.get_by_test_id("count-rejected")).to_have_text("0")
    page.get_by_test_id("application-search").locator("input[name=q]").fill(number)
    page.get_by_test_id("application-search").locator("button").click()
    expect(page.get_by_test_id("tab-review")).to_have_attribute("aria-current", "page")  # the tab is kept
    page.get_by_role("link", name=number).click()

    image = page.get_by_test_id("preview-id_card")
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth === 40", arg=image.element_handle())
    frame = page.get_by_test_id("preview-bank_proof")
    expect(frame).to_be_visible()
    pdf = base + (frame.get_attribute("src") or "")
    preview = page.request.get(pdf)
    assert preview.headers["content-type"] == "application/pdf"
    assert preview.headers["content-disposition"].startswith("inline;")
    assert preview.headers["x-frame-options"] == "SAMEORIGIN"
    checklist = page.get_by_test_id("checklist-id_card")
    for item in review.CHECKLISTS["id_card"]:
        expect(checklist).to_contain_text(words(language, item.label))
    expect(page.get_by_test_id("checklist-bank_proof").locator("input[type=checkbox]")).to_have_count(3)

    # The page that comes back opens the PDF again, and Chromium's viewer takes the focus as it opens
    # (the page gives it back: the next test); here the PDF arrives once the note is typed.
    with held(page, pdf):
        page.check("#d-approve")  # approving without the checklist ticked is refused
        page.get_by_test_id("decide").click()
        expect(page.locator(".console-messages .alert-danger")).to_contain_text(
            words(language, review.CHECKLISTS["id_card"][0].label)
        )
        expect(page.get_by_test_id("application-status")).to_have_text(_status(language, "submitted"))

        page.get_by_test_id("check-id_card.readable").check()
        page.get_by_test_id("reason-id_unreadable").check()
        page.check("#d-reject")
        page.fill("#review-note", "背面缺失 / the back is missing")
        expect(page.locator("#review-note")).to_have_value("背面缺失 / the back is missing")
    page.get_by_test_id("decide").click()
    expect(page.get_by_test_id("application-status")).to_have_text(_status(language, "rejected"))
    expect(page.get_by_test_id("review-reasons-shown")).to_contain_text(
        words(language, review.ReviewReason.ID_UNREADABLE.label)
    )

    # The merchant, in a browser of its own (clearing the reviewer's cookies raced its page's requests).
    with watched_page(browser, browser_errors, viewport={"width": 1400, "height": 900}) as shop:
        log_in(shop, base, "merchant_a")
        shop.goto(f"{base}/console/applications/{number}/")
        plain = words(language, review.PLAIN_WORDS[review.ReviewReason.ID_UNREADABLE])
        expect(shop.get_by_test_id("next-step")).to_contain_text(plain)
        expect(shop.get_by_test_id("next-step")).to_contain_text("背面缺失 / the back is missing")
        expect(shop.get_by_test_id("review-reasons-shown")).to_contain_text(plain)
        expect(shop.locator("[data-testid^=preview-]")).to_have_count(0)  # it does not reopen the files


# Notes the moment a document preview (a frame) takes the focus from the page, however briefly.
PREVIEW_TOOK_FOCUS = """
window.previewTookFocus = false;
window.addEventListener("blur", () => {
  if (document.activeElement && document.activeElement.matches("iframe")) window.previewTookFocus = true;
});
"""


def test_the_note_keeps_what_is_typed_after_a_pdf_preview_opened(page, live_server):
    """Chromium's PDF viewer takes the focus once it has opened (as if it were the whole tab): what the
    reviewer typed into the note from then on went into the PDF, and the decision was recorded without
    it. The page gives the focus back to the note."""
    number = _submitted(build_world())
    base = live_server.url
    log_in(page, base, "reviewer")
    page.add_init_script(PREVIEW_TOOK_FOCUS)
    with held(page, re.compile(r"/documents/\d+/preview/$")):  # the documents come slowly
        page.goto(f"{base}/console/applications/{number}/", wait_until="domcontentloaded")
        note = page.locator("#review-note")
        note.click()
        page.keyboard.type("背面缺失，")
    page.wait_for_function("() => window.previewTookFocus")  # the bank proof opened, Chromium took the focus
    expect(page.get_by_test_id("preview-bank_proof")).to_be_visible()
    expect(note).to_be_focused()
    page.keyboard.type("请重新上传 / the back is missing")
    expect(note).to_have_value("背面缺失，请重新上传 / the back is missing")


@contextmanager
def held(page: Page, url: str | re.Pattern[str]) -> Iterator[None]:
    """The requests for ``url`` wait until the block is done, as on a slow network."""
    waiting: list[Route] = []
    holding = True

    def hold(route: Route) -> None:
        if holding:
            waiting.append(route)
        else:
            route.continue_()

    page.route(url, hold)
    yield
    holding = False
    for route in waiting:
        route.continue_()


def _submitted(world: World) -> str:
    """The number of merchant A's application with an ID card photo and a bank proof PDF, waiting for
    review."""
    request = more_terminals_request(
        applicant=apps.Applicant(
            contact_name="陈女士",
            contact_phone="13900001111",
            store_name="二号店",
            city="上海",
            address="南京西路 100 号",
        ),
        documents=[Upload("id_card", "身份证.png", png(40, 30)), Upload("bank_proof", "开户许可证.pdf", PDF)],
    )
    return apps.application_submit(actor=Actor.for_user(world.user("merchant_a")), request=request).number


def _status(language: str, status: str) -> str:
    from posfleet.enrollment.states import ApplicationStatus

    with translation.override(language):
        return str(ApplicationStatus(status).label)
