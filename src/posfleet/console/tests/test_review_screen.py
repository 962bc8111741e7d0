"""The reviewer's screen: documents previewed inline (only for who may open them, framed only by the
site itself), the checklist beside each document, the preset reasons, and the queue tabs with their
counts and a search that keeps the tab."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from posfleet.audit.models import AuditEvent
from posfleet.console.tests.helpers import PERSONAS
from posfleet.enrollment import review
from posfleet.enrollment.models import Application, KycDocument
from posfleet.enrollment.services import applications as apps
from posfleet.testing.applications import APPLICANT, PDF, every_check, new_merchant_request, png
from posfleet.testing.refusals import assert_nothing_recorded

pytestmark = pytest.mark.django_db


def unchanged():
    return assert_nothing_recorded(Application.objects.all(), KycDocument.objects.all())


@pytest.fixture
def application(world, actor_of):
    return apps.application_submit(actor=actor_of(world.user("agent_a")), request=new_merchant_request())


def url(application: Application, rest: str = "") -> str:
    return f"/console/applications/{application.number}/{rest}"


def test_the_review_screen_previews_each_document_beside_its_checklist(world, login, application):
    html = login("reviewer").get(url(application)).content.decode()
    docs = {d.kind: d.pk for d in application.documents.all()}
    preview = url(application, "documents/{}/preview/")
    assert re.search(rf'<img [^>]*src="{re.escape(preview.format(docs["id_card"]))}"', html)
    for kind in ("business_licence", "bank_proof"):
        assert re.search(rf'<iframe [^>]*src="{re.escape(preview.format(docs[kind]))}"', html)
        assert f'data-testid="download-{kind}"' in html
    for code in every_check(application.number):
        assert f'form="review-form" name="checked" value="{code}"' in html
    for code in review.ReviewReason.values:
        assert f'name="reasons" value="{code}"' in html
    assert "身份证.png" not in html
    assert "营业执照.pdf" not in html

    agent_html = login("agent_a").get(url(application)).content.decode()  # sees the application only
    assert "/preview/" not in agent_html
    assert 'name="checked"' not in agent_html


@pytest.mark.parametrize(
    ("kind", "content_type", "body"),
    [("id_card", "image/png", png()), ("bank_proof", "application/pdf", PDF)],
)
def test_the_preview_is_inline_typed_and_framed_only_by_the_site(
    login, application, kind, content_type, body
):
    document = application.documents.get(kind=kind)
    reviewer = login("reviewer")
    response = reviewer.get(url(application, f"documents/{document.pk}/preview/"))
    assert response.status_code == 200
    assert response.content == body
    assert response["Content-Type"] == content_type
    extension = {"image/png": "png", "application/pdf": "pdf"}[content_type]
    assert (
        response["Content-Disposition"]
        == f'inline; filename="{application.number}-{document.pk}.{extension}"'
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in response["Content-Security-Policy"]
    assert "no-store" in response["Cache-Control"]
    assert AuditEvent.objects.filter(event_type="kyc.document_viewed", actor_label="reviewer").count() == 1
    page = reviewer.get(url(application))  # every other answer still refuses to be framed
    assert page["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]


@pytest.mark.parametrize("name", PERSONAS)
def test_only_who_may_open_a_document_gets_it_and_the_others_a_404(world, login, actor_of, application, name):
    document = application.documents.get(kind="id_card")
    allowed = name in {"admin", "reviewer"}
    client = login(name)
    for rest in (f"documents/{document.pk}/preview/", f"documents/{document.pk}/"):
        with assert_nothing_recorded(
            KycDocument.objects.all(), audit=["kyc.document_viewed"] if allowed else []
        ):
            response = client.get(url(application, rest))
        assert response.status_code == (200 if allowed else 404)
    if allowed:
        other = apps.application_submit(
            actor=actor_of(world.user("admin")), request=new_merchant_request(agent_code="AG-B")
        )
        with unchanged():  # a document id of another application is not found through this one
            assert client.get(url(other, f"documents/{document.pk}/preview/")).status_code == 404


def test_a_file_that_cannot_be_previewed_is_offered_for_download_only(login, application):
    document = application.documents.get(kind="bank_proof")
    KycDocument.objects.filter(pk=document.pk).update(content_type="application/octet-stream")
    reviewer = login("reviewer")
    html = reviewer.get(url(application)).content.decode()
    assert f"documents/{document.pk}/preview/" not in html
    assert "No preview for this file type; download it to check it." in html
    assert f'href="{url(application, f"documents/{document.pk}/")}" data-testid="download-bank_proof"' in html
    assert reviewer.get(url(application, f"documents/{document.pk}/preview/")).status_code == 404
    download = reviewer.get(url(application, f"documents/{document.pk}/"))
    assert download["Content-Disposition"].startswith("attachment;")


def test_rejecting_with_a_preset_reason_through_the_page(world, login, application):
    reviewer = login("reviewer", HTTP_ACCEPT_LANGUAGE="en")
    with unchanged():
        refused = reviewer.post(url(application, "review/"), {"decision": "reject", "reasons": ["forged"]})
    assert refused.status_code == 200  # the page again, with the refusal and what was chosen kept
    assert "Unknown reason “forged”." in refused.content.decode()
    with unchanged():
        refused = reviewer.post(
            url(application, "review/"), {"decision": "reject", "reasons": ["other"], "note": ""}
        )
    assert "Explain “other” in the note." in refused.content.decode()

    reviewer.post(
        url(application, "review/"),
        {
            "decision": "reject",
            "reasons": ["licence_expired", "name_mismatch"],
            "note": "Licence ended 2025.",
        },
    )
    application.refresh_from_db()
    assert (application.status, application.review_reasons) == (
        "rejected",
        ["licence_expired", "name_mismatch"],
    )
    html = reviewer.get(url(application)).content.decode()  # the reviewer reads the short labels
    assert (
        "<li>business licence expired or revoked</li><li>name does not match the business licence</li>"
        in html
    )
    agent_html = login("agent_a", HTTP_ACCEPT_LANGUAGE="en").get(url(application)).content.decode()
    assert (
        "<li>The business licence has expired or is no longer valid. Upload a valid business licence.</li>"
        in agent_html
    )
    assert "Licence ended 2025." in agent_html


def test_approving_through_the_page_needs_the_whole_checklist(login, application):
    reviewer = login("reviewer", HTTP_ACCEPT_LANGUAGE="en")
    every = every_check(application.number)
    with unchanged():
        refused = reviewer.post(url(application, "review/"), {"decision": "approve", "checked": every[1:]})
    html = refused.content.decode()
    assert (
        "Tick every checklist item of every document before approving: "
        "Sharp, the whole card visible, nothing covered." in html
    )
    assert Application.objects.get(pk=application.pk).status == "submitted"
    reviewer.post(url(application, "review/"), {"decision": "approve", "checked": every})
    assert Application.objects.get(pk=application.pk).status == "approved"


def count(html: str, tab: str) -> str:
    match = re.search(rf'data-testid="count-{tab}">([^<]*)<', html)
    assert match, tab
    return match.group(1)


def test_the_queue_tabs_count_what_the_reader_may_see_and_the_search_keeps_the_tab(world, login, actor_of):
    agent, reviewer = actor_of(world.user("agent_a")), actor_of(world.user("reviewer"))
    shop = apps.application_submit(
        actor=agent, request=new_merchant_request(applicant=replace(APPLICANT, shop_name="晨光文具店"))
    )
    second = apps.application_submit(actor=agent, request=new_merchant_request())
    apps.application_review(
        actor=reviewer, number=second.number, decision="needs_info", reasons=["id_expired"]
    )
    apps.application_submit(
        actor=actor_of(world.user("admin")), request=new_merchant_request(agent_code="AG-B")
    )

    html = login("reviewer").get("/console/applications/").content.decode()  # a reviewer starts at the queue
    assert [count(html, t) for t in ("review", "merchant", "fulfilment", "active", "rejected", "all")] == [
        "2",
        "1",
        "0",
        "0",
        "0",
        "3",
    ]
    assert 'aria-current="page" href="?tab=review" data-testid="tab-review"' in html
    assert shop.number in html
    assert second.number not in html
    html = login("agent_a").get("/console/applications/?tab=merchant").content.decode()
    assert [count(html, t) for t in ("review", "merchant", "all")] == ["1", "1", "2"]
    assert second.number in html
    assert shop.number not in html
    html = login("agent_b").get("/console/applications/").content.decode()
    assert [count(html, t) for t in ("review", "merchant", "all")] == ["1", "0", "1"]

    html = login("reviewer").get("/console/applications/", {"tab": "review", "q": "晨光"}).content.decode()
    assert shop.number in html
    assert [count(html, t) for t in ("review", "merchant", "all")] == ["1", "0", "1"]
    assert '<input type="hidden" name="tab" value="review">' in html
    assert 'href="?tab=merchant&amp;q=%E6%99%A8%E5%85%89" data-testid="tab-merchant"' in html
    html = (
        login("reviewer")
        .get("/console/applications/", {"tab": "merchant", "q": second.number})
        .content.decode()
    )
    assert second.number in html
    assert shop.number not in html
    assert (
        login("agent_b")
        .get("/console/applications/", {"tab": "all", "q": "晨光"})
        .content.decode()
        .count(shop.number)
        == 0
    )
