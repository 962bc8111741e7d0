"""Application pages: the form (with files), the progress picture and next step, the reviewer's
decision, KYC shown only to reviewers (audited), each step's button, and who sees what."""

from __future__ import annotations

from contextlib import nullcontext

import pytest

from posfleet.audit.models import AuditEvent
from posfleet.console.tests.helpers import PERSONAS
from posfleet.enrollment.models import Application, ApplicationTerminal, KycDocument
from posfleet.fleet.models import Terminal
from posfleet.testing.applications import KYC, PDF, every_check, new_merchant_request, png, stock, walk
from posfleet.testing.refusals import assert_nothing_recorded

pytestmark = pytest.mark.django_db

FORM = {
    "merchant_kind": "enterprise",
    "shop_name": "小明便利店",
    "legal_name": "小明便利店有限公司",
    "mcc": "5411",
    "contact_name": "李经理",
    "contact_phone": "13800138000",
    "contact_email": "",
    "store_name": "朝阳店",
    "city": "北京",
    "address": "建国路 1 号",
    "terminal_kind": "smart",
    "terminal_count": "1",
    "plan": "standard",
    **KYC,
    "accept_offer": "on",
}


def unchanged():
    """Around a refused page action: applications, documents, lines and terminals as they were; no
    audit event, outbox message or ledger entry."""
    return assert_nothing_recorded(
        Application.objects.all(),
        KycDocument.objects.all(),
        ApplicationTerminal.objects.all(),
        Terminal.objects.all(),
    )


def files() -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {
        "id_card": SimpleUploadedFile("id.png", png(), "image/png"),
        "business_licence": SimpleUploadedFile("licence.pdf", PDF, "application/pdf"),
        "bank_proof": SimpleUploadedFile("bank.pdf", PDF, "application/pdf"),
    }


def test_an_agent_applies_through_the_form_and_the_reviewer_approves(world, login):
    new_merchant_request()  # the standard plan
    agent = login("agent_a")
    page = agent.get("/console/applications/new/")
    assert page.status_code == 200
    assert "¥299.00" in page.content.decode()  # the deposit of the offer, shown before submitting

    with unchanged():
        refused = agent.post("/console/applications/new/", {**FORM, "accept_offer": "", **files()})
    assert refused.status_code == 200
    assert 'data-testid="form-invalid"' in refused.content.decode()
    assert Application.objects.count() == 0

    response = agent.post("/console/applications/new/", {**FORM, **files()})
    application = Application.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/console/applications/{application.number}/"
    assert application.documents.count() == 3

    html = agent.get(response["Location"]).content.decode()
    assert 'data-testid="application-steps"' in html
    assert 'data-testid="next-step"' in html
    assert KYC["id_number"] not in html
    assert 'data-testid="reveal-kyc"' not in html  # the agent does not read KYC back
    assert 'data-testid="review-form"' not in html

    reviewer = login("reviewer")
    html = reviewer.get(f"/console/applications/{application.number}/").content.decode()
    assert 'data-testid="review-form"' in html
    assert KYC["id_number"] not in html  # only on request
    shown = reviewer.post(f"/console/applications/{application.number}/kyc/").content.decode()
    assert KYC["id_number"] in shown
    assert KYC["bank_account"] in shown
    assert AuditEvent.objects.filter(event_type="kyc.viewed", actor_label="reviewer").count() == 1
    document = application.documents.get(kind="id_card")
    download = reviewer.get(f"/console/applications/{application.number}/documents/{document.pk}/")
    assert download.content == png()
    assert download["Content-Type"] == "image/png"
    assert "id.png" not in download["Content-Disposition"]
    assert download["Content-Disposition"] == f'attachment; filename="{application.number}-{document.pk}.png"'
    assert (  # who may not open it does not learn it is there
        agent.get(f"/console/applications/{application.number}/documents/{document.pk}/").status_code == 404
    )

    reviewer.post(
        f"/console/applications/{application.number}/review/",
        {"decision": "approve", "note": "KYC checked", "checked": every_check(application.number)},
    )
    application.refresh_from_db()
    assert application.status == "approved"
    assert application.merchant is not None


def test_the_steps_through_the_pages(world, login, actor_of):
    stock(world, 2)
    application = walk(world, actor_of, "approved")
    agent = login("agent_a")
    url = f"/console/applications/{application.number}/"
    assert 'data-testid="stock"' in agent.get(url).content.decode()
    agent.post(url + "allocate/", {"sns": ""})
    with unchanged():
        refused = agent.post(url + "ship/", {"carrier": "", "tracking_no": "X"})  # no carrier
    assert (refused.status_code, refused["Location"]) == (302, url)
    assert "<div>Name the carrier.</div>" in agent.get(url).content.decode()
    application.refresh_from_db()
    assert application.status == "allocated"
    agent.post(url + "ship/", {"carrier": "顺丰", "tracking_no": "SF0001"})
    agent.post(url + "deliver/")
    application.refresh_from_db()
    assert application.status == "delivered"
    for line in application.lines.select_related("terminal"):
        sn = line.terminal.sn
        agent.post(url + "install/", {"sn": sn})
        agent.post(url + "test/", {"sn": sn, "swipe": "on", "scan": "on"})  # print failed
        assert application.lines.get(pk=line.pk).activated_at is None
        agent.post(url + "test/", {"sn": sn, "swipe": "on", "scan": "on", "print": "on"})
    application.refresh_from_db()
    assert application.status == "completed"
    html = agent.get(url).content.decode()
    assert html.count("app-step-done") == 8


@pytest.mark.parametrize("name", PERSONAS)
def test_who_sees_an_application(world, login, actor_of, name):
    application = walk(world, actor_of, "submitted")
    expected = {
        "admin": 200,
        "reviewer": 200,
        "warehouse": 200,
        "agent_a": 200,
        "agent_a1": 404,
        "agent_b": 404,
        "merchant_a": 404,
        "merchant_b": 404,
    }[name]
    client = login(name)
    assert client.get(f"/console/applications/{application.number}/").status_code == expected
    listed = application.number in client.get("/console/applications/?tab=all").content.decode()
    assert listed == (expected == 200)
    refused = name not in {"admin", "reviewer"}
    with unchanged() if refused else nullcontext():  # not even a "KYC viewed" event
        kyc = client.post(f"/console/applications/{application.number}/kyc/")
    assert kyc.status_code == {"admin": 200, "reviewer": 200}.get(name, 403 if expected == 200 else 404)
    with unchanged() if refused else nullcontext():
        review = client.post(
            f"/console/applications/{application.number}/review/",
            {"decision": "reject", "reasons": "other", "note": "no"},
        )
    assert review.status_code == (302 if name in {"admin", "reviewer"} else 403 if expected == 200 else 404)


def test_a_merchant_applies_for_more_terminals_in_chinese(world, login):
    new_merchant_request()
    merchant = login("merchant_a", HTTP_ACCEPT_LANGUAGE="zh-hans")
    page = merchant.get("/console/applications/new/").content.decode()
    assert "提交申请" in page or "Submit the application" in page
    response = merchant.post(
        "/console/applications/new/",
        {
            "contact_name": "陈女士",
            "contact_phone": "021-5555-0101",
            "store_name": "二号店",
            "city": "上海",
            "address": "南京路 2 号",
            "terminal_kind": "smart",
            "terminal_count": "1",
            "plan": "standard",
            "accept_offer": "on",
        },
    )
    application = Application.objects.get()
    assert response.status_code == 302
    assert application.kind == "more_terminals"
    assert application.merchant == world.merchant_a
    assert application.shop_name == "Shop A"  # from the merchant's record, not from the (disabled) fields


def test_a_refused_decision_keeps_what_the_reviewer_ticked_and_wrote(world, login, actor_of):
    """Approving with one check not ticked is refused (nothing changes), and the page comes back with
    the decision, the ticks, the reasons and the note as the reviewer left them."""
    application = walk(world, actor_of, "submitted")
    url = f"/console/applications/{application.number}/"
    checks = every_check(application.number)
    ticked, left = checks[:-1], checks[-1]
    reviewer = login("reviewer")
    with unchanged():
        refused = reviewer.post(
            url + "review/",
            {"decision": "approve", "note": "Licence seal is faint", "checked": ticked},
        )
    assert refused.status_code == 200  # the page again (a form shown back), nothing changed
    html = refused.content.decode()
    assert 'data-testid="review-form"' in html
    for code in ticked:
        assert f'value="{code}" checked id="check-{code}"' in html
    assert f'value="{left}" id="check-{left}"' in html  # still not ticked
    assert 'id="d-approve" value="approve" checked' in html
    assert ">Licence seal is faint</textarea>" in html
    with unchanged():  # "other" without a note: refused, the choice kept
        refused = reviewer.post(url + "review/", {"decision": "reject", "reasons": ["other"], "note": ""})
    assert refused.status_code == 200
    html = refused.content.decode()
    assert 'id="d-reject" value="reject" checked' in html
    assert 'value="other" checked id="reason-other"' in html
    application.refresh_from_db()
    assert application.status == "submitted"
    fresh = reviewer.get(url).content.decode()  # a later visit starts clean
    assert ' checked id="check-' not in fresh
