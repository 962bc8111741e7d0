"""/applications (申请): submit, upload KYC documents, the review (maker-checker, needs-info loop), and
fulfilment (allocate, ship, deliver, install, test) to active terminals.

KYC values and documents are personal data: they are never in a list or a detail. Reviewers and admins
read them at ``/applications/{number}/kyc`` and ``/applications/{number}/documents/{id}``; every read is
an audit row (written by the service).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import File, Form, Query, Router
from ninja.files import UploadedFile

from posfleet.api import application_schemas as a
from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import IdempotencyKey, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.api.pagination import PageQuery, keyset
from posfleet.enrollment import review, selectors
from posfleet.enrollment.kyc import Kyc, Upload
from posfleet.enrollment.models import (
    Application,
    ApplicationKind,
    ApplicationStatus,
    ApplicationTerminal,
    DocumentKind,
    KycDocument,
)
from posfleet.enrollment.review import ReviewReason
from posfleet.enrollment.services import applications as apps
from posfleet.enrollment.services import fulfilment
from posfleet.iam.models import User
from posfleet.platform.context import Actor
from posfleet.platform.errors import ValidationFailed
from posfleet.platform.money import format_fen

router = Router(tags=["applications"])

# The file types a document may be (kyc.check_upload decides from the first bytes) and their extension.
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
DOCUMENT_RESPONSE = {
    "responses": {
        200: {
            "description": "The document's bytes (`Content-Disposition: attachment`, never cached).",
            "content": {ct: {"schema": {"type": "string", "format": "binary"}} for ct in EXTENSIONS},
        }
    }
}
UPLOAD_ERRORS = (*s.WRITE, 413)
# 410 data_shredded: the applicant's data key was destroyed (crypto-shredding), the data is gone.
PERSONAL_DATA_READ = (401, 403, 404, 410, 422)


def _user(request: HttpRequest) -> User:
    user = actor(request).user
    assert user is not None
    return user


# -- presenting ------------------------------------------------------------------------------------


def _summary_fields(app: Application) -> dict[str, Any]:
    return {
        "number": app.number,
        "kind": ApplicationKind(app.kind),
        "kind_label": str(ApplicationKind(app.kind).label),
        "status": ApplicationStatus(app.status),
        "status_label": str(ApplicationStatus(app.status).label),
        "shop_name": app.shop_name,
        "merchant_kind": app.merchant_kind,
        "agent": app.agent.code,
        "merchant": app.merchant.mid if app.merchant is not None else None,
        "previous_merchant": app.previous_merchant.mid if app.previous_merchant is not None else None,
        "terminal_kind": app.terminal_kind,
        "terminal_count": app.terminal_count,
        "plan": app.plan.code,
        "submitted_at": app.submitted_at,
        "review_due_at": app.review_due_at,
        "decided_at": app.decided_at,
        "completed_at": app.completed_at,
    }


def summary(app: Application) -> a.ApplicationOut:
    return a.ApplicationOut(**_summary_fields(app))


def offer(terms: dict[str, Any]) -> a.OfferOut:
    annual, deposit = int(terms.get("annual_fee_fen", 0)), int(terms.get("deposit_fen", 0))
    cap = terms.get("penalty_cap_fen")
    return a.OfferOut(
        term_months=int(terms.get("term_months", 12)),
        annual_fee_fen=annual,
        annual_fee_display=format_fen(annual),
        deposit_fen=deposit,
        deposit_display=format_fen(deposit),
        min_term_months=int(terms.get("min_term_months", 0)),
        penalty_rule=str(terms.get("penalty_rule", "")),
        penalty_fixed_fen=int(terms.get("penalty_fixed_fen", 0)),
        penalty_monthly_fen=int(terms.get("penalty_monthly_fen", 0)),
        penalty_cap_fen=int(cap) if cap is not None else None,
        recovery_fee_fen=int(terms.get("recovery_fee_fen", 0)),
        recovery_value_fen=int(terms.get("recovery_value_fen", 0)),
        damage_prices={str(k): int(v) for k, v in (terms.get("damage_prices") or {}).items()},
    )


def line(item: ApplicationTerminal) -> a.LineOut:
    return a.LineOut(
        sn=item.terminal.sn,
        tid=item.terminal.tid,
        status=item.terminal.status,
        allocated_at=item.allocated_at,
        installed_at=item.installed_at,
        checks={str(k): bool(v) for k, v in (item.checks or {}).items()},
        activated_at=item.activated_at,
        contract_id=item.contract_id,
    )


def document(doc: KycDocument) -> a.DocumentOut:
    return a.DocumentOut(
        id=doc.pk,
        kind=DocumentKind(doc.kind),
        kind_label=str(DocumentKind(doc.kind).label),
        content_type=doc.content_type,
        size=doc.size,
        uploaded_at=doc.uploaded_at,
    )


def reason_out(code: str) -> a.ReasonOut:
    return a.ReasonOut(
        code=ReviewReason(code), label=review.reason_label(code), text=review.in_plain_words([code])[0]
    )


def detail(app: Application, who: Actor) -> a.ApplicationDetailOut:
    """The application as ``who`` sees it: the read model the console's page renders too."""
    view = selectors.application_view(who, app)
    shown = view.contact_shown
    return a.ApplicationDetailOut(
        **_summary_fields(app),
        legal_name=app.legal_name,
        mcc=app.mcc,
        contact_name=app.contact_name if shown else presenters.mask_name(app.contact_name),
        contact_phone=app.contact_phone if shown else presenters.mask_phone(app.contact_phone),
        contact_email=app.contact_email if shown else presenters.mask_email(app.contact_email),
        contact_masked=not shown,
        store_name=app.store_name,
        city=app.city,
        address=app.address,
        kyc_given=bool(app.kyc_sealed),
        kyc_checked_on=app.kyc_checked_on,
        documents=[document(d) for d in view.documents],
        missing_documents=[DocumentKind(k) for k in view.missing],
        review_overdue=view.overdue,
        info_request=app.info_request,
        decision_reason=app.decision_reason,
        review_reasons=[reason_out(code) for code in app.review_reasons or [] if code in ReviewReason.values],
        carrier=app.carrier,
        tracking_no=app.tracking_no,
        shipped_at=app.shipped_at,
        delivered_at=app.delivered_at,
        eligibility=app.eligibility,
        offer=offer(app.offer),
        lines=[line(i) for i in view.lines],
        steps=[a.StepOut.model_validate(step, from_attributes=True) for step in view.steps],
        next_step=view.next_step,
        actions=view.actions,
    )


def _fresh(who: Actor, number: str) -> Any:
    """The application as it is now, as the caller sees it, dumped for the answer."""
    return presenters.dump(detail(selectors.application_for(who, number), who))


def _kyc(values: a.KycIn | None) -> dict[str, Any] | None:
    return values.model_dump() if values is not None else None


def _step(
    request: HttpRequest, number: str, key: str | None, step: Callable[[Actor], object]
) -> HttpResponse:
    """One write on application ``number`` (``step``, run as the caller, idempotent with ``key``),
    answered 200 with the application's detail as the caller sees it afterwards."""

    def work(who: Actor) -> Outcome:
        step(who)
        return Outcome(200, _fresh(who, number))

    return execute(request, actor(request), work, key=key)


# -- reading ---------------------------------------------------------------------------------------


@router.get(
    "/applications", summary="List applications", response=s.responses({200: a.ApplicationPage}, s.READ_LIST)
)
def applications_list(
    request: HttpRequest, filters: Query[a.ApplicationQuery], page: Query[PageQuery]
) -> a.ApplicationPage:
    """Applications the caller may see, newest first: staff all; an agent those through it and its
    sub-agents; a merchant its own. Filters combine (AND)."""
    qs = selectors.visible_applications(_user(request))
    if filters.status:
        qs = qs.filter(status__in=filters.status)
    if filters.kind:
        qs = qs.filter(kind__in=filters.kind)
    rows, cursor = keyset(qs, list_name="applications", key="id", page=page, descending=True)
    return a.ApplicationPage(items=[summary(x) for x in rows], next_cursor=cursor)


@router.get(
    "/applications/review-guide",
    summary="The review's preset reasons and document checklists",
    response=s.responses({200: a.ReviewGuideOut}, s.READ_LIST),
)
def applications_review_guide(request: HttpRequest) -> a.ReviewGuideOut:
    """What `POST /applications/{number}/review` accepts: the preset reasons (with what each tells the
    applicant) and the checklist of each document kind, in the caller's language. Anyone signed in."""
    return a.ReviewGuideOut(
        reasons=[reason_out(code) for code in ReviewReason.values],
        checklists=[
            a.ChecklistOut(
                kind=DocumentKind(kind),
                kind_label=str(DocumentKind(kind).label),
                items=[a.CheckItemOut(code=i.code, label=str(i.label)) for i in items],
            )
            for kind, items in review.CHECKLISTS.items()
        ],
    )


@router.get(
    "/applications/{number}",
    summary="Get an application",
    response=s.responses({200: a.ApplicationDetailOut}, s.READ_ONE),
)
def application_detail(request: HttpRequest, number: str) -> a.ApplicationDetailOut:
    """Its stage and facts, the terminals with their test checks, the documents present and missing,
    the review (due, decision, what was asked for), the contract offer. Never the KYC values."""
    who = actor(request)
    return detail(selectors.application_for(who, number), who)


@router.get(
    "/applications/{number}/kyc",
    summary="Read an application's KYC values (audited)",
    response=s.responses({200: a.KycOut}, PERSONAL_DATA_READ),
)
def application_kyc(request: HttpRequest, number: str, response: HttpResponse) -> a.KycOut:
    """Reviewers and admins only. Each read is recorded in the audit trail. 410 once the applicant's
    data was destroyed (crypto-shredding)."""
    values: Kyc | None = apps.kyc_reveal(actor=actor(request), number=number)
    app = selectors.application_for(actor(request), number)
    response["Cache-Control"] = "private, no-store"
    return a.KycOut(
        number=app.number,
        kyc_checked_on=app.kyc_checked_on,
        values=a.KycValuesOut(**asdict(values)) if values is not None else None,
    )


@router.get(
    "/applications/{number}/documents/{document_id}",
    summary="Download a KYC document (audited)",
    response=s.responses({}, PERSONAL_DATA_READ),
    openapi_extra=DOCUMENT_RESPONSE,
)
def application_document(request: HttpRequest, number: str, document_id: int) -> HttpResponse:
    """Reviewers and admins only; each read is recorded in the audit trail. The file is named
    `<number>-<kind>.<ext>` (the uploaded name is personal data and is not sent)."""
    _name, content_type, content = apps.kyc_document_read(
        actor=actor(request), number=number, document_id=document_id
    )
    kind, app_number = (
        KycDocument.objects.filter(pk=document_id).values_list("kind", "application__number").get()
    )
    response = HttpResponse(content, content_type=content_type)
    filename = f"{app_number}-{kind}.{EXTENSIONS.get(content_type, 'bin')}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# -- submit and documents --------------------------------------------------------------------------


@router.post(
    "/applications",
    summary="Submit an application",
    response=s.responses({201: a.ApplicationDetailOut}, s.WRITE),
)
def applications_create(
    request: HttpRequest, body: a.ApplicationIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """An agent (for a new merchant, through itself or a sub-agent in `agent`; or more terminals for a
    merchant it signed, in `merchant`), a merchant (more terminals for itself) or an admin (naming the
    agent). The applicant accepts the standard contract offer. The review clock starts."""

    def work(who: Actor) -> Outcome:
        applicant = apps.Applicant(
            merchant_kind=body.merchant_kind,
            shop_name=body.shop_name,
            legal_name=body.legal_name,
            mcc=body.mcc,
            contact_name=body.contact_name,
            contact_phone=body.contact_phone,
            contact_email=body.contact_email,
            store_name=body.store_name,
            city=body.city,
            address=body.address,
        )
        submitted = apps.application_submit(
            actor=who,
            request=apps.Request(
                applicant=applicant,
                terminal_kind=body.terminal_kind,
                terminal_count=body.terminal_count,
                accept_offer=body.accept_offer,
                plan_code=body.plan,
                kyc=_kyc(body.kyc),
                agent_code=body.agent,
                merchant_mid=body.merchant,
            ),
        )
        return Outcome(201, _fresh(who, submitted.number))

    return execute(request, actor(request), work, key=idempotency_key)


@router.post(
    "/applications/{number}/documents",
    summary="Upload a KYC document",
    response=s.responses({201: a.DocumentUploadedOut}, UPLOAD_ERRORS),
)
def applications_document_upload(
    request: HttpRequest,
    number: str,
    kind: Form[DocumentKind],
    file: File[UploadedFile],
    idempotency_key: IdempotencyKey = None,
) -> HttpResponse:
    """`multipart/form-data` with `kind` (id_card, business_licence, bank_proof) and `file` (PDF, JPEG or
    PNG, at most 5 MB; the type is read from the content). Replaces the document of that kind, while the
    application waits for review or for information. Whoever may answer for the application."""
    limit = settings.POSFLEET_APPLICATIONS["DOCUMENT_MAX_BYTES"]

    def work(who: Actor) -> Outcome:
        upload = Upload(kind=DocumentKind(kind).value, name=file.name or "", content=file.read(limit + 1))
        try:
            doc = apps.document_upload(actor=who, number=number, upload=upload)
        except ValidationFailed as exc:
            if exc.params.get("field") == upload.kind:  # the file itself was refused
                raise ValidationFailed(exc.detail, **{**exc.params, "field": "file"}) from exc
            raise
        out = a.DocumentUploadedOut(**document(doc).model_dump(), application=doc.application.number)
        return Outcome(201, presenters.dump(out))

    return execute(request, actor(request), work, key=idempotency_key)


@router.post(
    "/applications/{number}/respond",
    summary="Answer a request for information",
    response=s.responses({200: a.ApplicationDetailOut}, s.WRITE),
)
def applications_respond(
    request: HttpRequest, number: str, body: a.RespondIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """Upload the documents asked for first; then say what changed (and correct the KYC values if
    asked). The application goes back to the review queue and its review clock starts again."""
    return _step(
        request,
        number,
        idempotency_key,
        lambda who: apps.application_respond(actor=who, number=number, note=body.note, kyc=_kyc(body.kyc)),
    )


@router.post(
    "/applications/{number}/review",
    summary="Decide on an application",
    response=s.responses({200: a.ApplicationDetailOut}, s.WRITE),
)
def applications_review(
    request: HttpRequest, number: str, body: a.ReviewIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """Reviewers and admins, never on an application they submitted (maker-checker). `approve` needs
    every required document and opens the merchant (new MID) and its store; `needs_info` sends it back
    to the applicant with `reason` as what is missing."""
    return _step(
        request,
        number,
        idempotency_key,
        lambda who: apps.application_review(
            actor=who,
            number=number,
            decision=body.decision,
            reason=body.reason,
            reasons=[str(code) for code in body.reasons],
            checked=body.checklist,
        ),
    )


# -- fulfilment ------------------------------------------------------------------------------------


@router.post(
    "/applications/{number}/allocate",
    summary="Allocate terminals from the agent's stock",
    response=s.responses({200: a.ApplicationDetailOut}, s.WRITE),
)
def applications_allocate(
    request: HttpRequest,
    number: str,
    body: a.AllocateIn | None = None,
    idempotency_key: IdempotencyKey = None,
) -> HttpResponse:
    """The admin, the warehouse or the application's agent, after approval: the given SNs or the first
    free terminals of the kind in the agent's stock."""
    sns = body.sns if body is not None else None
    return _step(
        request,
        number,
        idempotency_key,
        lambda who: fulfilment.application_allocate(actor=who, number=number, sns=sns),
    )


@router.post(
    "/applications/{number}/ship",
    summary="Ship the allocated terminals",
    response=s.responses({200: a.ApplicationDetailOut}, s.WRITE),
)
def applications_ship(
    request: HttpRequest, number: str, body: a.ShipIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """The admin, the warehouse or the application's agent. Every terminal is shipped with the carrier
    and tracking number."""
    return _step(
        request,
        number,
        idempotency_key,
        lambda who: fulfilment.application_ship(
            actor=who, number=number, carrier=body.carrier, tracking_no=body.tracking_no
        ),
    )


@router.post(
    "/applications/{number}/deliver",
    summary="Confirm the delivery",
    response=s.responses({200: a.ApplicationDetailOut}, s.WRITE),
)
def applications_deliver(
    request: HttpRequest, number: str, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """The merchant, or its agent (a new merchant has no users yet), confirms the parcel arrived."""
    return _step(
        request,
        number,
        idempotency_key,
        lambda who: fulfilment.application_deliver(actor=who, number=number),
    )


@router.post(
    "/applications/{number}/terminals/{sn}/install",
    summary="Install a delivered terminal",
    response=s.responses({200: a.ApplicationDetailOut}, s.WRITE),
)
def applications_install(
    request: HttpRequest, number: str, sn: str, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """The admin or the application's agent: the terminal is bound to the merchant's store (a TID of
    its own) and its service contract is signed with the accepted offer. Then the test transaction."""
    return _step(
        request,
        number,
        idempotency_key,
        lambda who: fulfilment.application_install(actor=who, number=number, sn=sn),
    )


@router.post(
    "/applications/{number}/terminals/{sn}/test",
    summary="Record a terminal's test transaction",
    response=s.responses({200: a.TestOut}, s.WRITE),
)
def applications_test(
    request: HttpRequest, number: str, sn: str, body: a.TestIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """Swipe, scan and print all passed: the terminal is activated (its service runs for the contract's
    term); with the last terminal active the application is completed. A failed check is recorded and
    changes nothing else (`passed: false`): fix it and test again."""

    def work(who: Actor) -> Outcome:
        result = fulfilment.application_test(
            actor=who, number=number, sn=sn, checks=body.checks, note=body.note
        )
        app = selectors.application_for(who, number)
        item = ApplicationTerminal.objects.select_related("terminal").get(pk=result.line.pk)
        out = a.TestOut(
            sn=item.terminal.sn,
            passed=result.passed,
            failed=result.failed,
            completed=result.completed,
            line=line(item),
            application_status=ApplicationStatus(app.status),
        )
        return Outcome(200, presenters.dump(out))

    return execute(request, actor(request), work, key=idempotency_key)
