"""/closures: closing terminals for good (注销) — the quote, the request, review, the returned device,
and each case's steps with their evidence (the console's case page reads the same model)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, Query, Router, Schema

from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import IdempotencyKey, StepUpCode, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.api.pagination import PageQuery, keyset
from posfleet.closure import documents
from posfleet.closure.document_facts import PDF_CONTENT_TYPE
from posfleet.closure.quote import line_text
from posfleet.closure.selectors import case_view, cases_visible_to, filter_cases
from posfleet.closure.services import (
    case_for,
    closure_decide,
    closure_inspect,
    closure_quote,
    closure_receive,
    closure_report_shipment,
    closure_request,
    closure_step_retry,
    closure_withdraw,
)
from posfleet.iam.models import User
from posfleet.platform.context import Actor
from posfleet.platform.money import format_fen

router = Router(tags=["closures"])


class QuoteLineOut(Schema):
    code: str
    amount_fen: int
    amount_display: str
    effect: str = Field(description="to_merchant, owed, if (only if it applies), info, held")
    terminal: str
    text: str
    params: dict[str, Any]


class QuoteOut(Schema):
    on: date
    digest: str = Field(
        description="Confirm this digest in the request; a changed quote answers 409 quote_stale"
    )
    lines: list[QuoteLineOut]
    deposit_held_fen: int
    owed_fen: int
    expected_refund_fen: int
    expected_refund_display: str
    expected_shortfall_fen: int


class QuoteIn(Schema):
    terminals: list[str] = Field(min_length=1, max_length=200, description="SNs of one merchant's terminals")
    kind: Literal["closure", "agent_termination"] = Field(
        "closure", description="agent_termination: the merchant ends with its agent, which reviews (ADR 0023)"
    )


class ClosureIn(QuoteIn):
    reason: str = Field(description="shop_closed, switching_provider, moving_away, cost, unsatisfied, ...")
    note: str = ""
    quote_digest: str = Field(description="The digest of the quote the requester saw")


class DecisionIn(Schema):
    decision: Literal["approve", "reject"]
    note: str = ""


class NoteIn(Schema):
    note: str = ""


class ShipmentIn(Schema):
    tracking_no: str


class ReceiveIn(Schema):
    sn: str
    note: str = ""


class InspectIn(Schema):
    sn: str
    grade: Literal["A", "B", "C"]
    human_damage: bool = False
    note: str = ""
    disposal: Literal["refurbish", "scrap"]


class StepOut(Schema):
    name: str
    label: str
    state: str
    waiting_for: str
    since: datetime | None
    attempts: int
    message: str
    evidence: dict[str, Any]
    started_at: datetime | None
    finished_at: datetime | None


class CaseSummary(Schema):
    number: str
    kind: str = "closure"
    status: str
    merchant: str
    reason: str
    requested_at: datetime
    review_due_at: datetime
    certificate_code: str | None


class CaseOut(CaseSummary):
    note: str
    taken_over_at: datetime | None = None
    terminals: list[dict[str, Any]]
    quote: dict[str, Any]
    steps: list[StepOut]
    actions: list[str]
    review_overdue: bool
    next: str
    return_address: str
    return_due_on: date | None
    return_reference: str
    tracking_no: str


class CasePage(Schema):
    items: list[CaseSummary]
    next_cursor: str | None


class CaseQuery(Schema):
    view: Literal["all", "open", "review", "late", "stuck", "done"] = "all"


def _user(request: HttpRequest) -> User:
    user = actor(request).user
    assert user is not None
    return user


def _summary(case: Any) -> CaseSummary:
    return CaseSummary(
        number=case.number,
        kind=case.kind,
        status=case.status,
        merchant=case.merchant.mid,
        reason=case.reason,
        requested_at=case.requested_at,
        review_due_at=case.review_due_at,
        certificate_code=case.certificate_code,
    )


def _detail(user: User, number: str) -> CaseOut:
    case = case_for(Actor.for_user(user), number)
    view = case_view(user, case)
    return CaseOut(
        **_summary(case).dict(),
        note=case.note,
        taken_over_at=case.taken_over_at,
        terminals=[
            {**t, "received_at": t["received_at"].isoformat() if t["received_at"] else None}
            for t in view.terminals
        ],
        quote={**case.quote, "lines": view.quote_lines},
        steps=[StepOut(**{k: getattr(step, k) for k in StepOut.model_fields}) for step in view.steps],
        actions=view.actions,
        review_overdue=view.review_overdue,
        next=view.next_words,
        return_address=case.return_address,
        return_due_on=case.return_due_on,
        return_reference=case.return_reference,
        tracking_no=case.tracking_no,
    )


def _quote_out(quote: Any) -> QuoteOut:
    data = quote.as_json()
    return QuoteOut(
        on=data["on"],
        digest=data["digest"],
        lines=[
            QuoteLineOut(**line, amount_display=format_fen(line["amount_fen"]), text=line_text(line))
            for line in data["lines"]
        ],
        deposit_held_fen=data["deposit_held_fen"],
        owed_fen=data["owed_fen"],
        expected_refund_fen=data["expected_refund_fen"],
        expected_refund_display=format_fen(data["expected_refund_fen"]),
        expected_shortfall_fen=data["expected_shortfall_fen"],
    )


@router.get("/closures", summary="List closure cases", response=s.responses({200: CasePage}, s.READ_LIST))
def closures_list(request: HttpRequest, filters: Query[CaseQuery], page: Query[PageQuery]) -> CasePage:
    """Closure cases of the merchants the caller may see, newest first; `view` picks open, waiting for
    review, late (review or return past its deadline), stuck (a step needing attention) or done."""
    qs = filter_cases(cases_visible_to(_user(request)), filters.view)
    rows, cursor = keyset(qs, list_name="closures", key="id", page=page, descending=True)
    return CasePage(items=[_summary(c) for c in rows], next_cursor=cursor)


@router.post("/closures/quote", summary="Quote a closure", response=s.responses({200: QuoteOut}, s.WRITE))
def closure_quote_create(
    request: HttpRequest, body: QuoteIn, idempotency_key: IdempotencyKey = None
) -> QuoteOut:
    """Every money line closing these terminals would move, and why — nothing is changed (so a repeat
    needs no Idempotency-Key; one is accepted and ignored)."""
    return _quote_out(closure_quote(actor=actor(request), sns=body.terminals, kind=body.kind).quote)


@router.post("/closures", summary="Request a closure", response=s.responses({201: CaseOut}, s.WRITE))
def closure_create(
    request: HttpRequest, body: ClosureIn, idempotency_key: IdempotencyKey = None, step_up: StepUpCode = None
) -> HttpResponse:
    """Ask to close the terminals, confirming the quote's `digest` (X-Step-Up-TOTP needed). The
    terminals stop transacting at once. A changed quote answers 409 `quote_stale` with the new one."""

    def work(who: Actor) -> Outcome:
        assert who.user is not None
        case = closure_request(
            actor=who,
            sns=body.terminals,
            reason=body.reason,
            note=body.note,
            quote_digest=body.quote_digest,
            kind=body.kind,
        )
        return Outcome(201, presenters.dump(_detail(who.user, case.number)))

    return execute(
        request, actor(request), work, key=idempotency_key, step_up_needed=True, step_up_code=step_up
    )


@router.post(
    "/closures/returns",
    summary="Receive a returned device (scan its SN)",
    response=s.responses({200: CaseOut}, s.WRITE),
)
def closure_return_create(
    request: HttpRequest, body: ReceiveIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    def work(who: Actor) -> Outcome:
        assert who.user is not None
        entry = closure_receive(actor=who, sn=body.sn, note=body.note)
        return Outcome(200, presenters.dump(_detail(who.user, entry.case.number)))

    return execute(request, actor(request), work, key=idempotency_key)


@router.post(
    "/closures/inspections", summary="Grade a returned device", response=s.responses({200: CaseOut}, s.WRITE)
)
def closure_inspection_create(
    request: HttpRequest, body: InspectIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    def work(who: Actor) -> Outcome:
        assert who.user is not None
        entry = closure_inspect(
            actor=who,
            sn=body.sn,
            grade=body.grade,
            human_damage=body.human_damage,
            note=body.note,
            disposal=body.disposal,
        )
        return Outcome(200, presenters.dump(_detail(who.user, entry.case.number)))

    return execute(request, actor(request), work, key=idempotency_key)


@router.get(
    "/closures/{number}", summary="Get a closure case", response=s.responses({200: CaseOut}, s.READ_ONE)
)
def closure_detail(request: HttpRequest, number: str) -> CaseOut:
    return _detail(_user(request), number)


def _write(
    request: HttpRequest,
    number: str,
    do: Any,
    *,
    key: str | None,
    step_up_needed: bool = False,
    step_up: str | None = None,
) -> HttpResponse:
    def work(who: Actor) -> Outcome:
        assert who.user is not None
        do(who)
        return Outcome(200, presenters.dump(_detail(who.user, number)))

    return execute(
        request, actor(request), work, key=key, step_up_needed=step_up_needed, step_up_code=step_up
    )


@router.post(
    "/closures/{number}/withdraw",
    summary="Withdraw a closure request",
    response=s.responses({200: CaseOut}, s.WRITE),
)
def closure_withdraw_create(
    request: HttpRequest, number: str, body: NoteIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """Possible until review decides; terminals that were active are active again."""
    return _write(
        request,
        number,
        lambda who: closure_withdraw(actor=who, number=number, note=body.note),
        key=idempotency_key,
    )


@router.post(
    "/closures/{number}/decision",
    summary="Approve or reject a closure",
    response=s.responses({200: CaseOut}, s.WRITE),
)
def closure_decision_create(
    request: HttpRequest,
    number: str,
    body: DecisionIn,
    idempotency_key: IdempotencyKey = None,
    step_up: StepUpCode = None,
) -> HttpResponse:
    """A reviewer other than the requester decides; approving needs X-Step-Up-TOTP and starts the steps."""
    return _write(
        request,
        number,
        lambda who: closure_decide(actor=who, number=number, decision=body.decision, note=body.note),
        key=idempotency_key,
        step_up_needed=body.decision == "approve",
        step_up=step_up,
    )


@router.post(
    "/closures/{number}/shipment",
    summary="Give the return parcel's tracking number",
    response=s.responses({200: CaseOut}, s.WRITE),
)
def closure_shipment_create(
    request: HttpRequest, number: str, body: ShipmentIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    return _write(
        request,
        number,
        lambda who: closure_report_shipment(actor=who, number=number, tracking_no=body.tracking_no),
        key=idempotency_key,
    )


@router.post(
    "/closures/{number}/steps/{step}/retry",
    summary="Start a step needing attention again",
    response=s.responses({200: CaseOut}, s.WRITE),
)
def closure_step_retry_create(
    request: HttpRequest, number: str, step: str, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    return _write(
        request,
        number,
        lambda who: closure_step_retry(actor=who, number=number, step=step),
        key=idempotency_key,
    )


# -- the closure's documents: the certificate (注销证明) and the itemised statement, as PDF and HTML ------

PDF_DOCUMENT = {
    "responses": {
        200: {
            "description": "The document as an A4 PDF, in the caller's language.",
            "content": {PDF_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}
HTML_DOCUMENT = {
    "responses": {
        200: {
            "description": "The document as a stand-alone HTML page, in the caller's language.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    }
}


def _document(request: HttpRequest, number: str, which: str, fmt: str) -> HttpResponse:
    """A case the caller may see (another tenant's is 404) and its document: the certificate of a
    completed case, the statement of a running (provisional) or completed one; otherwise 404."""
    case = case_for(actor(request), number)
    if which == "certificate":
        cert = documents.certificate(
            case,
            verify_url=request.build_absolute_uri(
                reverse("closure_verify", args=[case.certificate_code or "-"])
            ),
        )
        html = documents.render_certificate(cert)
        name = f"closure-certificate-{case.number}"
    else:
        html = documents.render_statement(documents.statement(case))
        name = f"closure-statement-{case.number}"
    if fmt == "pdf":
        response = HttpResponse(documents.to_pdf(html), content_type=PDF_CONTENT_TYPE)
        response["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
    else:
        response = HttpResponse(html, content_type="text/html; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="{name}.html"'
    response["Cache-Control"] = "private, no-store"
    return response


@router.get(
    "/closures/{number}/certificate.pdf",
    summary="A closure certificate as PDF",
    url_name="closure_certificate_pdf",
    response=s.responses({}, s.READ_ONE),
    openapi_extra=PDF_DOCUMENT,
)
def closure_certificate_pdf(request: HttpRequest, number: str) -> HttpResponse:
    """The closure certificate (注销证明) of a completed case as an A4 PDF, with its verification code."""
    return _document(request, number, "certificate", "pdf")


@router.get(
    "/closures/{number}/certificate.html",
    summary="A closure certificate as HTML",
    url_name="closure_certificate_html",
    response=s.responses({}, s.READ_ONE),
    openapi_extra=HTML_DOCUMENT,
)
def closure_certificate_html(request: HttpRequest, number: str) -> HttpResponse:
    """The same certificate as a stand-alone HTML document."""
    return _document(request, number, "certificate", "html")


@router.get(
    "/closures/{number}/statement.pdf",
    summary="An itemised closure statement as PDF",
    url_name="closure_statement_pdf",
    response=s.responses({}, s.READ_ONE),
    openapi_extra=PDF_DOCUMENT,
)
def closure_statement_pdf(request: HttpRequest, number: str) -> HttpResponse:
    """Each money line of the quote beside what happened, with the difference and why, and the totals;
    provisional while the case runs."""
    return _document(request, number, "statement", "pdf")


@router.get(
    "/closures/{number}/statement.html",
    summary="An itemised closure statement as HTML",
    url_name="closure_statement_html",
    response=s.responses({}, s.READ_ONE),
    openapi_extra=HTML_DOCUMENT,
)
def closure_statement_html(request: HttpRequest, number: str) -> HttpResponse:
    return _document(request, number, "statement", "html")
