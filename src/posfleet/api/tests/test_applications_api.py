"""/api/v1/applications: the whole journey over HTTP (submit, documents, review, allocate, ship, deliver,
install, test), idempotent submission, who may see and do what (others' applications are 404), KYC
values and file names never in a list or a detail, and refusals that change nothing."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from posfleet.api.tests.helpers import Api, assert_problem
from posfleet.audit.models import AuditEvent
from posfleet.billing.defaults import ensure_standard_plan
from posfleet.billing.models import ServiceContract
from posfleet.enrollment.models import Application, ApplicationTerminal, KycDocument
from posfleet.enrollment.services import applications as apps
from posfleet.fleet.models import Terminal
from posfleet.platform import keyring
from posfleet.platform.models import OutboxMessage
from posfleet.testing.applications import (
    APPLICANT,
    KYC,
    PDF,
    documents,
    every_check,
    new_merchant_request,
    png,
    stock,
    walk,
)
from posfleet.testing.refusals import assert_nothing_recorded

pytestmark = pytest.mark.django_db

ALL_CHECKS = {"swipe": True, "scan": True, "print": True}
BODY: dict[str, Any] = {
    **asdict(APPLICANT),
    "terminal_kind": "smart",
    "terminal_count": 2,
    "plan": "standard",
    "accept_offer": True,
    "kyc": dict(KYC),
}
# What must never show outside /kyc and the document download: KYC values and the uploaded file names.
SECRETS = [*KYC.values(), *(u.name for u in documents())]
MATRIX_PERSONAS = ["admin", "reviewer", "warehouse", "agent_a", "agent_b", "merchant_a", "merchant_b"]


@pytest.fixture(autouse=True)
def standard_plan(db):
    ensure_standard_plan()


def upload(api: Api, number: str, kind: str, content: bytes, name: str = "scan.pdf", key: str | None = None):
    headers = dict(api.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    data = {"kind": kind, "file": SimpleUploadedFile(name, content, content_type="application/octet-stream")}
    return api.client.post(f"/api/v1/applications/{number}/documents", data, headers=headers)


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def text(response: Any) -> str:
    """The body as a person would read it (non-ASCII unescaped)."""
    return json.dumps(response.json(), ensure_ascii=False)


def trace(number: str) -> dict[str, Any]:
    """Everything a refusal must leave as it was."""
    app = Application.objects.filter(number=number)
    return {
        "application": app.values().first(),
        "documents": list(KycDocument.objects.filter(application__number=number).values().order_by("id")),
        "lines": list(ApplicationTerminal.objects.filter(application__number=number).values().order_by("id")),
        "terminals": list(Terminal.objects.values_list("sn", "status", "merchant_id").order_by("sn")),
        "applications": Application.objects.count(),
        "audit": AuditEvent.objects.count(),
        "outbox": OutboxMessage.objects.count(),
    }


def rows(number: str) -> tuple[Any, ...]:
    """The rows a refusal about application ``number`` must leave as they were (for
    ``assert_nothing_recorded``, which also sees the audit chain, the outbox and the ledger)."""
    return (
        Application.objects.all(),
        KycDocument.objects.filter(application__number=number),
        ApplicationTerminal.objects.filter(application__number=number),
        Terminal.objects.all(),
        ServiceContract.objects.all(),
    )


def trail(number: str) -> list[str]:
    return list(
        AuditEvent.objects.filter(
            subject_type="application", subject_id=number, event_type__startswith="application."
        )
        .order_by("seq")
        .values_list("event_type", flat=True)
    )


# -- the journey -----------------------------------------------------------------------------------


def test_from_submission_to_active_terminals_over_http(world, api_as):
    sns = stock(world, 3)
    agent, reviewer = api_as("agent_a"), api_as("reviewer")

    created = ok(agent.post("/applications", BODY, key="apply-1"), 201)
    number = created["number"]
    assert (created["status"], created["kind"], created["agent"], created["merchant"]) == (
        "submitted",
        "new_merchant",
        "AG-A",
        None,
    )
    assert created["kyc_given"] is True
    assert created["documents"] == []
    assert created["missing_documents"] == ["id_card", "business_licence", "bank_proof"]
    assert created["offer"]["deposit_fen"] == 29_900
    assert created["offer"]["annual_fee_display"] == "¥99.00"
    assert created["review_overdue"] is False

    # Approval needs the documents: the reviewer is told which are missing.
    with assert_nothing_recorded(*rows(number)):
        missing = assert_problem(
            reviewer.post(f"/applications/{number}/review", {"decision": "approve", "reason": "ok"}),
            409,
            "guard_failed",
        )
    assert missing["missing"] == ["id_card", "business_licence", "bank_proof"]

    for doc in documents():
        got = ok(upload(agent, number, doc.kind, doc.content, doc.name), 201)
        assert (got["application"], got["kind"], got["size"]) == (number, doc.kind, len(doc.content))
        assert got["content_type"] == ("image/png" if doc.kind == "id_card" else "application/pdf")
        assert "name" not in got
    seen = agent.get(f"/applications/{number}")
    detail = ok(seen)
    assert detail["missing_documents"] == []
    assert sorted(d["kind"] for d in detail["documents"]) == ["bank_proof", "business_licence", "id_card"]

    approved = ok(
        reviewer.post(
            f"/applications/{number}/review",
            {"decision": "approve", "reason": "KYC ok", "checklist": every_check(number)},
        )
    )
    assert (approved["status"], approved["decision_reason"]) == ("approved", "KYC ok")
    assert approved["merchant"] is not None
    assert len(approved["merchant"]) == 15
    assert approved["decided_at"] is not None

    allocated = ok(agent.post(f"/applications/{number}/allocate", {}))
    assert allocated["status"] == "allocated"
    assert [line["sn"] for line in allocated["lines"]] == sns[:2]

    shipped = ok(
        agent.post(f"/applications/{number}/ship", {"carrier": "SF Express", "tracking_no": "SF1234567890"})
    )
    assert (shipped["status"], shipped["carrier"], shipped["tracking_no"]) == (
        "shipped",
        "SF Express",
        "SF1234567890",
    )
    assert {line["status"] for line in shipped["lines"]} == {"shipped"}

    # A new merchant has no users yet: its agent confirms the delivery.
    delivered = ok(agent.post(f"/applications/{number}/deliver", None, raw=b""))
    assert delivered["status"] == "delivered"
    assert delivered["delivered_at"] is not None

    first, second = sns[0], sns[1]
    installed = ok(agent.post(f"/applications/{number}/terminals/{first}/install", None, raw=b""))
    line = next(x for x in installed["lines"] if x["sn"] == first)
    assert (line["status"], line["contract_id"] is not None, bool(line["tid"])) == ("bound", True, True)

    with assert_nothing_recorded(*rows(number)):
        unknown = assert_problem(
            agent.post(f"/applications/{number}/terminals/{first}/test", {"checks": {"smell": True}}),
            422,
            "validation_error",
        )
    assert unknown["field"] == "checks"
    failed = ok(
        agent.post(
            f"/applications/{number}/terminals/{first}/test",
            {"checks": {"swipe": True, "scan": True, "print": False}},
        )
    )
    assert (failed["passed"], failed["failed"], failed["completed"]) == (False, ["print"], False)
    assert failed["line"]["status"] == "bound"
    assert failed["line"]["checks"] == {"swipe": True, "scan": True, "print": False}
    passed = ok(agent.post(f"/applications/{number}/terminals/{first}/test", {"checks": ALL_CHECKS}))
    assert (passed["passed"], passed["failed"], passed["completed"]) == (True, [], False)
    assert (passed["line"]["status"], passed["application_status"]) == ("active", "delivered")

    ok(agent.post(f"/applications/{number}/terminals/{second}/install", None, raw=b""))
    last = ok(agent.post(f"/applications/{number}/terminals/{second}/test", {"checks": ALL_CHECKS}))
    assert (last["passed"], last["completed"], last["application_status"]) == (True, True, "completed")

    final = ok(agent.get(f"/applications/{number}"))
    assert final["status"] == "completed"
    assert final["completed_at"] is not None
    assert [(x["sn"], x["status"], x["checks"]) for x in final["lines"]] == [
        (first, "active", ALL_CHECKS),
        (second, "active", ALL_CHECKS),
    ]
    assert all(x["tid"] and x["activated_at"] and x["contract_id"] for x in final["lines"])
    assert Terminal.objects.get(sn=sns[2]).status == "allocated"
    assert trail(number) == [
        "application.submitted",
        "application.approved",
        "application.allocated",
        "application.shipped",
        "application.delivered",
        "application.installed",
        "application.tested",
        "application.tested",
        "application.installed",
        "application.tested",
        "application.completed",
    ]
    uploads = AuditEvent.objects.filter(subject_id=number, event_type="kyc.document_uploaded")
    assert uploads.count() == 3


def test_a_merchant_asks_for_more_terminals_and_confirms_the_delivery(world, api_as):
    stock(world, 1)
    merchant, agent = api_as("merchant_a"), api_as("agent_a")
    more = {
        "terminal_kind": "smart",
        "terminal_count": 1,
        "accept_offer": True,
        "merchant": "100000000000002",  # ignored: a merchant applies for itself
        "contact_name": "Ms Chen",
        "contact_phone": "021-5555-0101",
        "store_name": "Second shop",
        "city": "上海",
        "address": "1 Road",
    }
    created = ok(merchant.post("/applications", more), 201)
    number = created["number"]
    assert (created["kind"], created["merchant"], created["agent"]) == (
        "more_terminals",
        "100000000000001",
        "AG-A",
    )
    assert (created["kyc_given"], created["missing_documents"]) == (False, [])
    ok(api_as("reviewer").post(f"/applications/{number}/review", {"decision": "approve", "reason": "known"}))
    ok(agent.post(f"/applications/{number}/allocate", {"sns": ["sn-ap-0001"]}))
    ok(agent.post(f"/applications/{number}/ship", {"carrier": "EMS", "tracking_no": "E1"}))
    with assert_nothing_recorded(*rows(number)):  # no contract offered, no terminal bound
        assert_problem(  # the merchant confirms the delivery, it does not install
            merchant.post(f"/applications/{number}/terminals/SN-AP-0001/install", None, raw=b""),
            403,
            "permission_denied",
        )
    assert ok(merchant.post(f"/applications/{number}/deliver", None, raw=b""))["status"] == "delivered"
    ok(agent.post(f"/applications/{number}/terminals/SN-AP-0001/install", None, raw=b""))
    done = ok(agent.post(f"/applications/{number}/terminals/SN-AP-0001/test", {"checks": ALL_CHECKS}))
    assert (done["completed"], done["application_status"]) == (True, "completed")
    terminal = Terminal.objects.select_related("merchant", "store").get(sn="SN-AP-0001")
    assert (terminal.status, terminal.merchant.mid, terminal.store.name) == (
        "active",
        "100000000000001",
        "Second shop",
    )
    assert [x["number"] for x in ok(merchant.get("/applications"))["items"]] == [number]


def test_the_needs_info_loop_over_http(world, api_as):
    agent, reviewer = api_as("agent_a"), api_as("reviewer")
    number = ok(agent.post("/applications", BODY), 201)["number"]
    with assert_nothing_recorded(*rows(number)):
        assert_problem(  # nobody asked yet
            agent.post(f"/applications/{number}/respond", {"note": "here"}), 409, "transition_not_allowed"
        )
    asked = ok(
        reviewer.post(
            f"/applications/{number}/review",
            {"decision": "needs_info", "reasons": ["missing_document"], "reason": "Upload the documents."},
        )
    )
    assert (asked["status"], asked["info_request"]) == ("needs_info", "Upload the documents.")
    for doc in documents():
        ok(upload(agent, number, doc.kind, doc.content, doc.name), 201)
    # A second id card replaces the first: one document of each kind is present.
    ok(upload(agent, number, "id_card", png(3, 3), "again.png"), 201)
    kyc = {**KYC, "bank_account": "6222 0202 0011 2233 446"}
    answered = ok(agent.post(f"/applications/{number}/respond", {"note": "Uploaded.", "kyc": kyc}))
    assert answered["status"] == "submitted"
    assert len(answered["documents"]) == 3
    assert next(d for d in answered["documents"] if d["kind"] == "id_card")["size"] == len(png(3, 3))
    values = ok(reviewer.get(f"/applications/{number}/kyc"))["values"]
    assert values["bank_account"] == "6222020200112233446"
    ok(
        reviewer.post(
            f"/applications/{number}/review",
            {"decision": "approve", "reason": "complete", "checklist": every_check(number)},
        )
    )
    assert trail(number) == [
        "application.submitted",
        "application.info_requested",
        "application.info_given",
        "application.approved",
    ]


def test_submitting_is_idempotent(world, api_as):
    agent = api_as("agent_a")
    first = agent.post("/applications", BODY, key="apply-once")
    number = ok(first, 201)["number"]
    before = trace(number)
    again = agent.post("/applications", BODY, key="apply-once")
    assert (again.status_code, again.content, again["Idempotent-Replayed"]) == (201, first.content, "true")
    assert trace(number) == before
    other = {**BODY, "terminal_count": 3}
    assert_problem(agent.post("/applications", other, key="apply-once"), 422, "idempotency_key_reused")
    assert trace(number) == before

    # Uploads too: the same file with the same key is stored once.
    doc = documents()[0]
    up = upload(agent, number, doc.kind, doc.content, doc.name, key="doc-1")
    ok(up, 201)
    after_upload = trace(number)
    replay = upload(agent, number, doc.kind, doc.content, doc.name, key="doc-1")
    assert (replay.status_code, replay.content, replay["Idempotent-Replayed"]) == (201, up.content, "true")
    assert trace(number) == after_upload
    assert KycDocument.objects.filter(application__number=number).count() == 1


def test_lists_are_newest_first_filtered_and_paginated(world, actor_of, api_as):
    agent = actor_of(world.user("agent_a"))
    numbers = [apps.application_submit(actor=agent, request=new_merchant_request()).number for _ in range(3)]
    apps.application_review(
        actor=actor_of(world.user("reviewer")),
        number=numbers[0],
        decision="reject",
        reasons=["scope_mismatch"],
        reason="MCC wrong",
    )
    mine = apps.application_submit(
        actor=actor_of(world.user("merchant_a")),
        request=new_merchant_request(
            applicant=apps.Applicant(
                contact_name="Ms Chen", contact_phone="021-5555-0101", city="上海", address="1 Road"
            ),
            kyc=None,
            documents=[],
            terminal_count=1,
        ),
    ).number
    api = api_as("agent_a")
    page = ok(api.get("/applications", {"limit": 3}))
    assert [x["number"] for x in page["items"]] == [mine, numbers[2], numbers[1]]
    rest = ok(api.get("/applications", {"limit": 3, "cursor": page["next_cursor"]}))
    assert ([x["number"] for x in rest["items"]], rest["next_cursor"]) == ([numbers[0]], None)
    rejected = ok(api.get("/applications", {"status": "rejected"}))["items"]
    assert [(x["number"], x["status_label"]) for x in rejected] == [(numbers[0], "rejected")]
    more = ok(api.get("/applications", {"kind": "more_terminals"}))["items"]
    assert [(x["number"], x["merchant"], x["shop_name"]) for x in more] == [
        (mine, "100000000000001", "Shop A")
    ]
    both = ok(api.get("/applications", {"status": ["rejected", "submitted"], "kind": "new_merchant"}))[
        "items"
    ]
    assert [x["number"] for x in both] == [numbers[2], numbers[1], numbers[0]]
    with assert_nothing_recorded(Application.objects.all()):
        assert_problem(api.get("/applications", {"status": "nope"}), 422, "validation_error")
        assert_problem(api.get("/applications", {"cursor": "forged"}), 422, "validation_error")
    # The merchant sees its own application only.
    assert [x["number"] for x in ok(api_as("merchant_a").get("/applications"))["items"]] == [mine]


# -- who may see and do what -----------------------------------------------------------------------

# persona: (sees it in the list, detail, kyc and document reads, review)
OF_A_NEW_MERCHANT = {
    "admin": (True, 200, 200, 200),
    "reviewer": (True, 200, 200, 200),
    "warehouse": (True, 200, 403, 403),
    "agent_a": (True, 200, 403, 403),
    "agent_b": (False, 404, 404, 404),
    "merchant_a": (False, 404, 404, 404),
    "merchant_b": (False, 404, 404, 404),
}
OF_MERCHANT_A = {
    **OF_A_NEW_MERCHANT,
    "merchant_a": (True, 200, 403, 403),
}


def _check_matrix(
    api: Api, number: str, expected: tuple[bool, int, int, int], document_id: int | None
) -> None:
    listed, detail, kyc, review = expected
    items = ok(api.get("/applications"))["items"]
    assert (number in [x["number"] for x in items]) is listed
    codes = {403: "permission_denied", 404: "not_found"}
    got = api.get(f"/applications/{number}")
    if detail == 200:
        assert ok(got)["number"] == number
    else:
        assert_problem(got, detail, codes[detail])
    paths = [f"/applications/{number}/kyc"]
    if document_id is not None:
        paths.append(f"/applications/{number}/documents/{document_id}")
    for path in paths:
        if kyc == 200:
            read = api.get(path)
            assert read.status_code == 200, read.content
        else:
            with assert_nothing_recorded(*rows(number)):  # a refused read is not a "kyc.viewed"
                assert_problem(api.get(path), kyc, codes[kyc])
    before = trace(number)
    decided = api.post(
        f"/applications/{number}/review",
        {"decision": "needs_info", "reasons": ["bank_proof_unreadable"], "reason": "The bank proof."},
    )
    if review == 200:
        assert ok(decided)["status"] == "needs_info"
    else:
        assert_problem(decided, review, codes[review])
        assert trace(number) == before


@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_who_sees_reads_and_reviews_an_agents_application(world, actor_of, api_as, persona):
    application = walk(world, actor_of, "submitted")
    document_id = KycDocument.objects.get(application=application, kind="id_card").pk
    _check_matrix(api_as(persona), application.number, OF_A_NEW_MERCHANT[persona], document_id)


@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_who_sees_reads_and_reviews_a_merchants_own_application(world, actor_of, api_as, persona):
    number = ok(
        api_as("merchant_a").post(
            "/applications",
            {
                "terminal_kind": "smart",
                "terminal_count": 1,
                "accept_offer": True,
                "contact_name": "Ms Chen",
                "contact_phone": "021-5555-0101",
                "city": "上海",
                "address": "2 Road",
            },
        ),
        201,
    )["number"]
    _check_matrix(api_as(persona), number, OF_MERCHANT_A[persona], None)


def test_the_reviewer_of_an_application_is_not_its_submitter(world, api_as):
    admin = api_as("admin")
    created = ok(admin.post("/applications", {**BODY, "agent": "AG-B"}), 201)
    assert created["agent"] == "AG-B"
    before = trace(created["number"])
    refused = assert_problem(
        admin.post(
            f"/applications/{created['number']}/review",
            {"decision": "reject", "reasons": ["other"], "reason": "no"},
        ),
        403,
        "permission_denied",
    )
    assert "maker-checker" in refused["detail"]
    assert trace(created["number"]) == before


def test_fulfilment_steps_are_for_the_agent_the_warehouse_and_the_admin(world, actor_of, api_as):
    stock(world, 2)
    number = walk(world, actor_of, "approved").number
    for persona, status, code in (
        ("reviewer", 403, "permission_denied"),
        ("merchant_a", 404, "not_found"),
        ("agent_b", 404, "not_found"),
    ):
        before = trace(number)
        assert_problem(api_as(persona).post(f"/applications/{number}/allocate", {}), status, code)
        assert trace(number) == before
    assert ok(api_as("warehouse").post(f"/applications/{number}/allocate", {}))["status"] == "allocated"
    read_only = api_as("agent_a", "read")
    before = trace(number)
    assert_problem(
        api_as("agent_a").post(f"/applications/{number}/allocate", {}), 409, "transition_not_allowed"
    )
    assert_problem(  # install comes after the delivery (the table: none from allocated)
        api_as("agent_a").post(f"/applications/{number}/terminals/SN-AP-0001/install", None, raw=b""),
        409,
        "transition_not_allowed",
    )
    assert_problem(read_only.post(f"/applications/{number}/deliver", {}), 403, "permission_denied")
    assert trace(number) == before


# -- personal data ---------------------------------------------------------------------------------


def test_kyc_values_and_file_names_are_never_in_lists_or_details(world, actor_of, api_as):
    application = walk(world, actor_of, "submitted")
    number = application.number
    for persona in ("admin", "reviewer", "warehouse", "agent_a"):
        api = api_as(persona)
        for response in (api.get("/applications"), api.get(f"/applications/{number}")):
            shown = text(response) + response.content.decode()
            assert number in shown
            for secret in SECRETS:
                assert secret not in shown, (persona, secret)
    detail = ok(api_as("agent_a").get(f"/applications/{number}"))
    assert (detail["contact_phone"], detail["contact_masked"]) == ("13800138000", False)
    masked = ok(api_as("warehouse").get(f"/applications/{number}"))
    assert (masked["contact_phone"], masked["contact_masked"]) == ("138****8000", True)
    assert masked["address"] == "朝阳区建国路 1 号"  # where to deliver

    before = AuditEvent.objects.filter(event_type="kyc.viewed").count()
    read = api_as("reviewer").get(f"/applications/{number}/kyc")
    body = ok(read)
    assert body["values"] == KYC
    assert "no-store" in read["Cache-Control"]
    viewed = AuditEvent.objects.filter(event_type="kyc.viewed", subject_id=number)
    assert viewed.count() == before + 1
    assert viewed.get().actor_label.startswith("reviewer")


def test_documents_download_under_a_generic_name(world, actor_of, api_as):
    application = walk(world, actor_of, "submitted")
    other = walk(world, actor_of, "submitted")
    number = application.number
    id_card = KycDocument.objects.get(application=application, kind="id_card")
    proof = KycDocument.objects.get(application=application, kind="bank_proof")
    reviewer = api_as("reviewer")

    got = reviewer.get(f"/applications/{number}/documents/{id_card.pk}")
    assert got.status_code == 200
    assert (got.content, got["Content-Type"]) == (png(), "image/png")
    assert got["Content-Disposition"] == f'attachment; filename="{number}-id_card.png"'
    assert "no-store" in got["Cache-Control"]
    assert got["X-Content-Type-Options"] == "nosniff"
    pdf = reviewer.get(f"/applications/{number}/documents/{proof.pk}")
    assert (pdf.content, pdf["Content-Type"]) == (PDF, "application/pdf")
    assert pdf["Content-Disposition"] == f'attachment; filename="{number}-bank_proof.pdf"'
    for response in (got, pdf):
        headers = " ".join(f"{k}: {v}" for k, v in response.items())
        for doc in documents():
            assert doc.name not in headers
            assert quote(doc.name) not in headers
    viewed = AuditEvent.objects.filter(event_type="kyc.document_viewed", subject_id=number)
    assert [e.after["kind"] for e in viewed.order_by("seq")] == ["id_card", "bank_proof"]

    # Another application's document is not reachable through this one.
    foreign = KycDocument.objects.get(application=other, kind="id_card")
    with assert_nothing_recorded(*rows(number)):  # no "kyc.document_viewed" of either
        assert_problem(reviewer.get(f"/applications/{number}/documents/{foreign.pk}"), 404, "not_found")
        assert_problem(reviewer.get(f"/applications/{number}/documents/{2**63 + 5}"), 404, "not_found")


def test_shredded_personal_data_is_gone_and_the_application_stays(world, actor_of, api_as):
    application = walk(world, actor_of, "submitted")
    document_id = KycDocument.objects.filter(application=application).values_list("pk", flat=True)[0]
    assert keyring.shred(application.data_key) is True
    reviewer = api_as("reviewer")
    with assert_nothing_recorded(*rows(application.number)):  # nothing was shown: nothing is audited
        assert_problem(reviewer.get(f"/applications/{application.number}/kyc"), 410, "data_shredded")
        assert_problem(
            reviewer.get(f"/applications/{application.number}/documents/{document_id}"), 410, "data_shredded"
        )
    assert ok(reviewer.get(f"/applications/{application.number}"))["kyc_given"] is True


# -- input and refusals ----------------------------------------------------------------------------


def test_bad_submissions_are_422_with_the_field_and_store_nothing(world, api_as):
    agent, read_only = api_as("agent_a"), api_as("agent_a", "read")
    before = (Application.objects.count(), AuditEvent.objects.count(), OutboxMessage.objects.count())
    for changes, field in (
        ({"kyc": {**KYC, "id_number": "110105194912310021"}}, "id_number"),
        ({"kyc": None}, "legal_person"),
        ({"terminal_count": 0}, "terminal_count"),
        ({"terminal_count": 51}, "terminal_count"),
        ({"terminal_kind": "toaster"}, "terminal_kind"),
        ({"accept_offer": False}, "accept_offer"),
        ({"plan": "nope"}, "plan"),
        ({"mcc": "54a1"}, "mcc"),
        ({"merchant": "999999999999999"}, "merchant"),
        ({"agent": "AG-B"}, "agent"),  # not one of agent A's own
    ):
        body = assert_problem(agent.post("/applications", {**BODY, **changes}), 422, "validation_error")
        assert body["field"] == field, (changes, body)
        assert SECRETS[1] not in json.dumps(body, ensure_ascii=False)
    for changes, field in (
        ({"terminal_count": "2"}, "terminal_count"),
        ({"accept_offer": "yes"}, "accept_offer"),
        ({"kyc": {**KYC, "bank_account": "1" * 65}}, "kyc.bank_account"),
    ):
        body = assert_problem(agent.post("/applications", {**BODY, **changes}), 422, "validation_error")
        assert [e["field"] for e in body["errors"]] == [field]
        assert all("6222020200112233445" not in e["msg"] for e in body["errors"])
    assert_problem(api_as("reviewer").post("/applications", BODY), 403, "permission_denied")
    assert_problem(read_only.post("/applications", BODY), 403, "permission_denied")
    assert (Application.objects.count(), AuditEvent.objects.count(), OutboxMessage.objects.count()) == before


def test_uploads_are_checked_and_refusals_store_nothing(world, actor_of, api_as, settings):
    application = walk(world, actor_of, "submitted", new_merchant_request(documents=[]))
    number = application.number
    agent = api_as("agent_a")
    limit = settings.POSFLEET_APPLICATIONS["DOCUMENT_MAX_BYTES"]
    before = trace(number)

    too_large = assert_problem(
        upload(agent, number, "bank_proof", PDF + b"0" * limit), 422, "validation_error"
    )
    assert too_large["field"] == "file"
    wrong_type = assert_problem(
        upload(agent, number, "id_card", b"MZ\x90\x00binary", "x.exe"), 422, "validation_error"
    )
    assert wrong_type["field"] == "file"
    empty = assert_problem(upload(agent, number, "id_card", b"", "empty.png"), 422, "validation_error")
    assert empty["field"] == "file"
    unknown = assert_problem(upload(agent, number, "selfie", png()), 422, "validation_error")
    assert [e["field"] for e in unknown["errors"]] == ["kind"]
    headers = dict(agent.headers)
    no_file = agent.client.post(
        f"/api/v1/applications/{number}/documents", {"kind": "id_card"}, headers=headers
    )
    assert_problem(no_file, 422, "validation_error")
    assert_problem(upload(api_as("agent_b"), number, "id_card", png()), 404, "not_found")
    assert_problem(upload(api_as("warehouse"), number, "id_card", png()), 403, "permission_denied")
    assert_problem(upload(api_as("reviewer"), number, "id_card", png()), 403, "permission_denied")
    assert trace(number) == before

    apps.application_review(
        actor=actor_of(world.user("reviewer")),
        number=number,
        decision="reject",
        reasons=["missing_document"],
        reason="incomplete",
    )
    decided = trace(number)
    assert_problem(upload(agent, number, "id_card", png()), 409, "transition_not_allowed")
    assert trace(number) == decided


def test_decisions_and_steps_out_of_turn_are_refused_and_change_nothing(world, actor_of, api_as):
    number = walk(world, actor_of, "submitted").number
    agent, reviewer = api_as("agent_a"), api_as("reviewer")
    before = trace(number)
    bad = assert_problem(
        reviewer.post(f"/applications/{number}/review", {"decision": "maybe", "reason": "x"}),
        422,
        "validation_error",
    )
    assert [e["field"] for e in bad["errors"]] == ["decision"]
    assert_problem(
        reviewer.post(f"/applications/{number}/review", {"decision": "reject", "reason": "  "}),
        422,
        "validation_error",
    )
    assert_problem(agent.post(f"/applications/{number}/allocate", {}), 409, "transition_not_allowed")
    assert_problem(
        agent.post(f"/applications/{number}/ship", {"carrier": "SF", "tracking_no": "1"}),
        409,
        "transition_not_allowed",
    )
    assert_problem(
        agent.post(f"/applications/{number}/deliver", None, raw=b""), 409, "transition_not_allowed"
    )
    assert_problem(
        agent.post(f"/applications/{number}/respond", {"note": "more"}), 409, "transition_not_allowed"
    )
    assert_problem(
        agent.post(f"/applications/{number}/terminals/SN-NONE/test", {"checks": ALL_CHECKS}),
        409,
        "transition_not_allowed",
    )
    assert_problem(agent.get("/applications/AP0000000000"), 404, "not_found")
    assert_problem(agent.post("/applications/AP0000000000/deliver", None, raw=b""), 404, "not_found")
    assert trace(number) == before
