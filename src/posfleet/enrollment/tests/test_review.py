"""The reviewer's preset reasons and document checklists (enrollment/review.py): what a decision must
carry, what it stores (the application, the audit row, the outbox event), what the applicant reads in
their language, and the review queues with their counts."""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.utils import translation

from posfleet.audit.models import AuditEvent
from posfleet.enrollment import review, selectors, states
from posfleet.enrollment.models import Application, ApplicationTerminal, DocumentKind, KycDocument
from posfleet.enrollment.services import applications as apps
from posfleet.notifications.rendering import render
from posfleet.parties.models import Merchant
from posfleet.platform.errors import GuardFailed, ValidationFailed
from posfleet.platform.models import OutboxMessage
from posfleet.testing.applications import APPLICANT, documents, every_check, new_merchant_request
from posfleet.testing.refusals import assert_nothing_recorded

pytestmark = pytest.mark.django_db


def unchanged():
    return assert_nothing_recorded(
        Application.objects.all(),
        KycDocument.objects.all(),
        ApplicationTerminal.objects.all(),
        Merchant.objects.all(),
    )


def submitted(world, actor_of, **changes) -> Application:
    return apps.application_submit(
        actor=actor_of(world.user("agent_a")), request=new_merchant_request(**changes)
    )


def last_audit(number: str) -> AuditEvent:
    return AuditEvent.objects.filter(subject_type="application", subject_id=number).order_by("-seq").first()


def in_language(language: str, text) -> str:
    with translation.override(language):
        return str(text)


def test_the_vocabulary_is_complete_and_the_queues_cover_every_status_once():
    assert set(review.CHECKLISTS) == set(DocumentKind.values)
    assert set(review.PLAIN_WORDS) == set(review.ReviewReason)
    codes = [item.code for items in review.CHECKLISTS.values() for item in items]
    assert len(codes) == len(set(codes)) == len(review.ALL_ITEMS) == 12
    assert all(code.split(".")[0] in DocumentKind.values for code in codes)
    queued = [status for statuses in states.QUEUES.values() for status in statuses]
    assert sorted(queued) == sorted(states.ApplicationStatus.values)  # each status in exactly one queue
    assert set(states.QUEUE_LABELS) == set(states.QUEUES)


@pytest.mark.parametrize(
    ("decision", "reasons", "note", "field", "message"),
    [
        ("reject", ["id_unreadable", "no_such_reason"], "", "reasons", "Unknown reason “no_such_reason”."),
        ("needs_info", ["ID_UNREADABLE"], "", "reasons", "Unknown reason “ID_UNREADABLE”."),
        ("reject", [], "The licence is fake.", "reasons", "Choose at least one reason."),
        ("needs_info", [], "", "reasons", "Choose at least one reason."),
        ("reject", ["id_expired", "other"], "  ", "note", "Explain “other” in the note."),
        ("approve", ["id_expired"], "", "reasons", None),
    ],
)
def test_a_decision_with_a_bad_reason_is_refused_and_changes_nothing(
    world, actor_of, decision, reasons, note, field, message
):
    application = submitted(world, actor_of)
    reviewer = actor_of(world.user("reviewer"))
    with unchanged(), pytest.raises(ValidationFailed) as refused:
        apps.application_review(
            actor=reviewer,
            number=application.number,
            decision=decision,
            reasons=reasons,
            reason=note,
            checked=every_check(application.number),
        )
    assert refused.value.params["field"] == field
    if message:
        assert str(refused.value.detail) == message
    if message and message.startswith("Unknown"):
        assert refused.value.params["allowed"] == list(review.ReviewReason.values)
    application.refresh_from_db()
    assert (application.status, application.review_reasons, application.reviewed_by) == (
        "submitted",
        [],
        None,
    )


def test_a_rejection_stores_its_reasons_and_the_applicant_reads_them_in_plain_words(world, actor_of):
    application = submitted(world, actor_of)
    number = application.number
    apps.application_review(
        actor=actor_of(world.user("reviewer")),
        number=number,
        decision="reject",
        reasons=["bank_name_mismatch", "id_unreadable", "id_unreadable"],  # each once, taxonomy order
        reason="The account is in the name of a third person.",
        checked=["id_card.valid"],
    )
    application.refresh_from_db()
    assert application.status == "rejected"
    assert application.review_reasons == ["id_unreadable", "bank_name_mismatch"]
    assert application.decision_reason == "The account is in the name of a third person."

    event = last_audit(number)
    assert (event.event_type, event.reason, event.note) == (
        "application.rejected",
        "id_unreadable",
        "The account is in the name of a third person.",
    )
    assert event.after["reasons"] == ["id_unreadable", "bank_name_mismatch"]
    assert event.after["checklist"] == ["id_card.valid"]
    message = OutboxMessage.objects.filter(aggregate_id=number).order_by("-id").first()
    assert (message.payload["step"], message.payload["reasons"]) == (
        "rejected",
        "id_unreadable,bank_name_mismatch",
    )

    for language in ("en", "zh-hans"):
        expected = " ".join(
            [
                in_language(language, review.PLAIN_WORDS[review.R.ID_UNREADABLE]),
                in_language(language, review.PLAIN_WORDS[review.R.BANK_NAME_MISMATCH]),
                "The account is in the name of a third person.",
            ]
        )
        with translation.override(language):
            assert expected in selectors.next_step(application)
        params = {"number": number, "shop_name": application.shop_name, **message.payload}
        _subject, body = render("application.rejected", params, language)
        assert expected in body
    with translation.override("en"):
        assert selectors.next_step(application) == (
            "The application was rejected: The photo of the ID card cannot be read. Upload a sharp photo of "
            "the whole card, with nothing covered. The settlement account is not in the name of the business "
            "or of its legal representative. Give an account in that name. The account is in the name of a "
            "third person."
        )


def test_asking_for_information_with_other_needs_the_note_and_shows_it(world, actor_of):
    application = submitted(world, actor_of)
    apps.application_review(
        actor=actor_of(world.user("reviewer")),
        number=application.number,
        decision="needs_info",
        reasons=["other"],
        reason="Send a photo of the shop front.",
    )
    application.refresh_from_db()
    assert (application.status, application.review_reasons) == ("needs_info", ["other"])
    assert application.info_request == "Send a photo of the shop front."
    with translation.override("en"):
        assert selectors.next_step(application) == (
            "The reviewer needs more information: “Send a photo of the shop front.”. Add it below and send "
            "the application back."
        )
    assert last_audit(application.number).after["reasons"] == ["other"]


def test_approving_needs_every_checklist_item_of_every_document(world, actor_of):
    application = submitted(world, actor_of)
    number = application.number
    reviewer = actor_of(world.user("reviewer"))
    every = every_check(number)
    assert len(every) == 12  # ID card 4, business licence 5, bank proof 3
    for checked, guard_or_field in [
        ([], "checklist_complete"),
        (every[:-1], "checklist_complete"),
        ([*every, "id_card.smile"], "checklist"),  # not on any checklist
    ]:
        error = GuardFailed if guard_or_field == "checklist_complete" else ValidationFailed
        with unchanged(), pytest.raises(error) as refused:
            apps.application_review(
                actor=reviewer, number=number, decision="approve", reason="ok", checked=checked
            )
        if error is GuardFailed:
            assert refused.value.params["guard"] == "checklist_complete"
            assert refused.value.params["unticked"] == [c for c in every if c not in checked]
        else:
            assert str(refused.value.detail) == "Unknown checklist item “id_card.smile”."
    assert Application.objects.get(pk=application.pk).status == "submitted"

    apps.application_review(actor=reviewer, number=number, decision="approve", checked=list(reversed(every)))
    application.refresh_from_db()
    assert (application.status, application.review_reasons, application.decision_reason) == (
        "approved",
        [],
        "",
    )
    event = last_audit(number)
    assert event.event_type == "application.approved"
    assert (event.after["checklist"], event.after["reasons"]) == (every, [])


def test_a_checklist_item_of_a_document_the_application_lacks_is_refused(world, actor_of):
    application = submitted(
        world,
        actor_of,
        applicant=replace(APPLICANT, merchant_kind="individual"),
        documents=documents(enterprise=False),
    )
    number = application.number
    with unchanged(), pytest.raises(ValidationFailed) as refused:
        apps.application_review(
            actor=actor_of(world.user("reviewer")),
            number=number,
            decision="approve",
            checked=[*every_check(number), "business_licence.readable"],
        )
    assert refused.value.params["field"] == "checklist"
    assert "business_licence.readable" not in refused.value.params["allowed"]


def test_the_queue_counts_and_the_search_see_only_what_the_reader_may(world, actor_of):
    reviewer, admin = actor_of(world.user("reviewer")), actor_of(world.user("admin"))
    first = submitted(world, actor_of, applicant=replace(APPLICANT, shop_name="晨光文具店"))
    submitted(world, actor_of)
    asked = submitted(world, actor_of)
    apps.application_review(
        actor=reviewer, number=asked.number, decision="needs_info", reasons=["id_expired"]
    )
    refused = submitted(world, actor_of)
    apps.application_review(actor=reviewer, number=refused.number, decision="reject", reasons=["id_mismatch"])
    apps.application_submit(actor=admin, request=new_merchant_request(agent_code="AG-B"))  # agent B's

    def counts(name: str, text: str = "") -> dict[str, int]:
        visible = selectors.visible_applications(world.user(name))
        return selectors.queue_counts(selectors.search_applications(visible, text))

    assert counts("reviewer") == {
        "review": 3,
        "merchant": 1,
        "fulfilment": 0,
        "active": 0,
        "rejected": 1,
        "all": 5,
    }
    assert counts("agent_a") == {
        "review": 2,
        "merchant": 1,
        "fulfilment": 0,
        "active": 0,
        "rejected": 1,
        "all": 4,
    }
    assert counts("agent_b") == {
        "review": 1,
        "merchant": 0,
        "fulfilment": 0,
        "active": 0,
        "rejected": 0,
        "all": 1,
    }
    assert counts("agent_a1")["all"] == 0
    assert counts("merchant_a")["all"] == 0
    assert counts("reviewer", "晨光")["all"] == 1
    assert counts("reviewer", first.number.lower())["review"] == 1
    assert counts("agent_b", "晨光")["all"] == 0  # agent A's application is not found for agent B
