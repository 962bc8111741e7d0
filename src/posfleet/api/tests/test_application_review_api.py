"""The review over HTTP: the review guide (preset reasons and checklists), a decision's reasons and
checklist, refusals that change nothing, and the reasons the applicant reads back."""

from __future__ import annotations

import pytest

from posfleet.api.tests.helpers import assert_problem
from posfleet.api.tests.test_applications_api import ok, rows
from posfleet.billing.defaults import ensure_standard_plan
from posfleet.enrollment import review
from posfleet.testing.applications import every_check, walk
from posfleet.testing.refusals import assert_nothing_recorded

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def standard_plan(db):
    ensure_standard_plan()


def test_the_review_guide_lists_the_reasons_and_checklists_in_the_callers_language(api_as):
    guide = ok(api_as("merchant_a").get("/applications/review-guide"))
    assert [r["code"] for r in guide["reasons"]] == list(review.ReviewReason.values)
    first = guide["reasons"][0]
    assert first == {
        "code": "id_unreadable",
        "label": "ID card photo unreadable",
        "text": "The photo of the ID card cannot be read. Upload a sharp photo of the whole card, with "
        "nothing covered.",
    }
    assert [c["kind"] for c in guide["checklists"]] == ["id_card", "business_licence", "bank_proof"]
    assert sum(len(c["items"]) for c in guide["checklists"]) == len(review.ALL_ITEMS)
    assert guide["checklists"][0]["items"][0] == {
        "code": "id_card.readable",
        "label": "Sharp, the whole card visible, nothing covered",
    }
    assert api_as(None).get("/applications/review-guide").status_code == 401


def test_a_decision_carries_its_reasons_and_checklist_and_refusals_change_nothing(world, actor_of, api_as):
    number = walk(world, actor_of, "submitted").number
    reviewer = api_as("reviewer")
    path = f"/applications/{number}/review"
    refusals = [
        ({"decision": "reject", "reasons": ["no_such_reason"]}, 422, "validation_error"),
        ({"decision": "reject", "reason": "without a preset reason"}, 422, "validation_error"),
        ({"decision": "needs_info", "reasons": ["other"]}, 422, "validation_error"),
        (
            {"decision": "approve", "reasons": ["id_expired"], "checklist": every_check(number)},
            422,
            "validation_error",
        ),
        ({"decision": "approve", "checklist": ["bank_proof.teeth"]}, 422, "validation_error"),
        ({"decision": "approve", "checklist": every_check(number)[:-1]}, 409, "guard_failed"),
    ]
    for body, status, code in refusals:
        with assert_nothing_recorded(*rows(number)):
            problem = assert_problem(reviewer.post(path, body), status, code)
        if status == 409:
            assert problem["unticked"] == ["bank_proof.account"]

    asked = ok(
        reviewer.post(
            path,
            {
                "decision": "needs_info",
                "reasons": ["bank_proof_unreadable", "other"],
                "reason": "Also the shop's opening hours.",
                "checklist": ["id_card.readable", "id_card.valid"],
            },
        )
    )
    assert asked["status"] == "needs_info"
    assert asked["info_request"] == "Also the shop's opening hours."
    assert [r["code"] for r in asked["review_reasons"]] == ["bank_proof_unreadable", "other"]
    assert asked["review_reasons"][0]["text"] == (
        "The bank account proof cannot be read. Upload a sharp photo or scan of the whole document."
    )
    assert "The bank account proof cannot be read." in asked["next_step"]
    agent_view = ok(api_as("agent_a").get(f"/applications/{number}"))
    assert agent_view["review_reasons"] == asked["review_reasons"]
