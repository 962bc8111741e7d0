"""Applications (申请): submit, review with maker-checker and a needs-info loop, the review clock.

Each function is the one path for its step (STYLE.md §1-§7): scope (404) → permission (403) → state
(409, from the table in ``enrollment/states.py``) → input (422) → one transaction that compare-and-sets
``status``, writes the audit row and the outbox event (``services.common``). A refusal raises before
anything is written. Fulfilment (allocate, ship, deliver, install, test) is in ``services.fulfilment``,
opening the approved merchant in ``services.onboarding``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, clean_text, record
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import RatePlan
from posfleet.billing.services.contracts import Terms, check_terms
from posfleet.enrollment import kyc as kyc_data
from posfleet.enrollment import review
from posfleet.enrollment.eligibility import MerchantNotClosed, Outcome, assess
from posfleet.enrollment.models import Application, ApplicationKind, DocumentKind, KycDocument
from posfleet.enrollment.selectors import application_for, current_documents, missing_documents
from posfleet.enrollment.services.common import audit, move, progressed
from posfleet.enrollment.services.onboarding import open_merchant
from posfleet.enrollment.states import DECISIONS, OPEN, PERMISSIONS, ApplicationCommand, ApplicationStatus
from posfleet.fleet.selectors import Kind, merchant_holds_terminals
from posfleet.iam.models import Role, User
from posfleet.parties import selectors as parties
from posfleet.parties.selectors import Agent, Merchant, MerchantKind, MerchantStatus
from posfleet.platform import counters, keyring
from posfleet.platform.clock import now, today
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    GuardFailed,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)

S = ApplicationStatus
NUMBER_COUNTER = "application_number"
PHONE = re.compile(r"^\+?[0-9][0-9 -]{6,19}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def policy() -> dict[str, Any]:
    return dict(settings.POSFLEET_APPLICATIONS)


def standard_offer(starts_on: Any = None) -> Terms:
    """The contract offer shown before submitting (settings ``POSFLEET_APPLICATIONS["OFFER"]``)."""
    offer = dict(policy()["OFFER"])
    return Terms(starts_on=starts_on or today(), **offer)


# -- submit ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applicant:
    """The merchant as it will be registered, and where the terminals go."""

    merchant_kind: str = ""
    shop_name: str = ""
    legal_name: str = ""
    mcc: str = ""
    contact_name: str = ""
    contact_phone: str = ""
    contact_email: str = ""
    store_name: str = ""
    city: str = ""
    address: str = ""


@dataclass(frozen=True)
class Request:
    applicant: Applicant
    terminal_kind: str
    terminal_count: int
    accept_offer: bool
    plan_code: str = "standard"
    kyc: dict[str, Any] | None = None
    documents: Sequence[kyc_data.Upload] = field(default_factory=tuple)
    agent_code: str = ""  # an agent applying through one of its sub-agents; an admin naming the agent
    merchant_mid: str = ""  # more terminals for, or re-application of, an existing merchant


def _from_merchant(applicant: Applicant, merchant: Merchant) -> Applicant:
    """The applicant's data, completed from the merchant's record where left empty."""
    values = {name: getattr(applicant, name) for name in Applicant.__dataclass_fields__}
    values["merchant_kind"] = values["merchant_kind"] or merchant.kind
    values["shop_name"] = values["shop_name"] or merchant.name
    values["legal_name"] = values["legal_name"] or merchant.legal_name
    values["mcc"] = values["mcc"] or merchant.mcc
    values["contact_name"] = values["contact_name"] or merchant.contact_name
    values["contact_phone"] = values["contact_phone"] or merchant.contact_phone
    values["contact_email"] = values["contact_email"] or merchant.contact_email
    values["store_name"] = values["store_name"] or merchant.name
    return Applicant(**values)


def _clean_applicant(applicant: Applicant) -> Applicant:
    values = {
        name: clean_text(str(getattr(applicant, name) or ""), 255) for name in Applicant.__dataclass_fields__
    }
    if values["merchant_kind"] not in MerchantKind.values:
        raise ValidationFailed(
            _("Choose individual or enterprise."), field="merchant_kind", allowed=list(MerchantKind.values)
        )
    for name in ("shop_name", "legal_name", "contact_name", "contact_phone", "store_name", "city", "address"):
        if not values[name]:
            raise ValidationFailed(_("This field is required."), field=name)
    for name, limit in (
        ("shop_name", 200),
        ("legal_name", 200),
        ("contact_name", 100),
        ("store_name", 200),
        ("city", 64),
    ):
        if len(values[name]) > limit:
            raise ValidationFailed(_("At most %(n)s characters.") % {"n": limit}, field=name)
    if not parties.mcc_valid(values["mcc"]):
        raise ValidationFailed(_("An MCC is 4 digits."), field="mcc")
    if not PHONE.match(values["contact_phone"]):
        raise ValidationFailed(_("Give a phone number of 7 to 20 digits."), field="contact_phone")
    if values["contact_email"] and not EMAIL.match(values["contact_email"]):
        raise ValidationFailed(_("This is not an e-mail address."), field="contact_email")
    return Applicant(**values)


def _whose(actor: Actor, user: User, request: Request) -> tuple[Agent, Merchant | None]:
    """The agent the application goes through and the existing merchant it concerns, if any."""
    merchant: Merchant | None = None
    if user.role == Role.MERCHANT and user.organisation_id is not None:
        merchant = parties.merchant_of_organisation(user.organisation_id)
        if merchant is None:
            raise PermissionDenied()
        return merchant.agent, merchant
    if request.merchant_mid:
        try:
            merchant = parties.merchant_for(user, request.merchant_mid.strip().upper())
        except NotFound as exc:
            raise ValidationFailed(
                _("Unknown merchant “%(mid)s”.") % {"mid": request.merchant_mid[:15]}, field="merchant"
            ) from exc
        return merchant.agent, merchant
    if request.agent_code:
        try:
            return parties.agent_for(user, request.agent_code.strip()), None
        except NotFound as exc:
            raise ValidationFailed(
                _("Unknown agent “%(code)s”.") % {"code": request.agent_code[:16]}, field="agent"
            ) from exc
    if user.role == Role.AGENT and user.organisation_id is not None:
        agent = parties.agent_of_organisation(user.organisation_id)
        if agent is not None:
            return agent, None
    raise ValidationFailed(_("Choose the agent the application goes through."), field="agent")


def _in_service(merchant: Merchant) -> bool:
    """Whether the merchant holds a terminal that is not closed (on its way, bound, in use or paused)."""
    return merchant_holds_terminals(merchant.pk)


def _eligibility(merchant: Merchant) -> dict[str, Any] | None:
    """For a merchant whose terminals are all closed: the re-application decision (None: not closed,
    so this is a request for more terminals). Too early or money owed refuses the submission, in the
    same plain words the merchant reads."""
    try:
        assessment = assess(merchant, kyc_checked_on=today())
    except MerchantNotClosed:
        if merchant.status == MerchantStatus.CLOSED:
            raise
        return None
    if assessment.outcome == Outcome.TOO_EARLY:
        raise GuardFailed(
            str(assessment.merchant_text), guard="waiting_period", on=str(assessment.waiting_ends_on)
        )
    if assessment.outcome == Outcome.BLOCKED:
        raise GuardFailed(str(assessment.merchant_text), guard="outstanding_debt")
    return assessment.as_json()


def application_submit(*, actor: Actor, request: Request) -> Application:
    user = actor.require_person(PERMISSIONS[ApplicationCommand.SUBMIT])
    agent, merchant = _whose(actor, user, request)
    kind = ApplicationKind.NEW_MERCHANT
    eligibility = None
    if merchant is not None:
        kind = ApplicationKind.MORE_TERMINALS
        if not _in_service(merchant):
            eligibility = _eligibility(merchant)
            if eligibility is not None:
                kind = ApplicationKind.REAPPLICATION
    applicant = _clean_applicant(
        _from_merchant(request.applicant, merchant) if merchant else request.applicant
    )
    if request.terminal_kind not in Kind.values:
        raise ValidationFailed(_("Choose a terminal kind."), field="terminal_kind", allowed=list(Kind.values))
    limit = policy()["MAX_TERMINALS"]
    if isinstance(request.terminal_count, bool) or not 1 <= int(request.terminal_count) <= limit:
        raise ValidationFailed(_("Ask for 1 to %(n)s terminals.") % {"n": limit}, field="terminal_count")
    plan = RatePlan.objects.filter(code=request.plan_code, is_competitor=False).first()
    if plan is None:
        raise ValidationFailed(_("Unknown rate plan."), field="plan")
    if not request.accept_offer:
        raise ValidationFailed(_("Read and accept the contract offer to apply."), field="accept_offer")
    needs_kyc = kind != ApplicationKind.MORE_TERMINALS
    kyc = None
    if request.kyc or needs_kyc:
        kyc = kyc_data.clean_kyc(
            request.kyc or {}, enterprise=applicant.merchant_kind == MerchantKind.ENTERPRISE
        )
    uploads = list(request.documents)
    types = [kyc_data.check_upload(u) for u in uploads]
    if len({u.kind for u in uploads}) != len(uploads):
        raise ValidationFailed(_("Each document once."), field="documents")
    offer = standard_offer()
    check_terms(offer)

    with transaction.atomic():
        at = now()
        number = f"AP{at:%y%m}{counters.next_values(NUMBER_COUNTER)[0]:06d}"
        data_key = (
            merchant.data_key
            if merchant is not None and merchant.data_key and kind == ApplicationKind.MORE_TERMINALS
            else None
        )
        application = Application(
            number=number,
            kind=kind,
            agent=agent,
            merchant=merchant if kind == ApplicationKind.MORE_TERMINALS else None,
            previous_merchant=merchant if kind == ApplicationKind.REAPPLICATION else None,
            **{name: getattr(applicant, name) for name in Applicant.__dataclass_fields__},
            terminal_kind=request.terminal_kind,
            terminal_count=int(request.terminal_count),
            plan=plan,
            offer={k: v for k, v in offer.__dict__.items() if k != "starts_on"},
            data_key=data_key or keyring.new_key(),
            eligibility=eligibility,
            submitted_by=user,
            submitted_at=at,
            review_due_at=at + timedelta(hours=policy()["REVIEW_SLA_HOURS"]),
        )
        if kyc is not None:
            application.kyc_sealed = kyc_data.seal_kyc(application, kyc)
            application.kyc_checked_on = today()
        application.save()
        KycDocument.objects.bulk_create(
            [
                kyc_data.sealed_document(application, u, t, user.pk, at)
                for u, t in zip(uploads, types, strict=True)
            ]
        )
        audit(
            actor,
            application,
            EventType.APPLICATION_SUBMITTED,
            kind=kind,
            agent=agent.code,
            merchant=merchant.mid if merchant else None,
            terminal_kind=request.terminal_kind,
            terminal_count=application.terminal_count,
            plan=plan.code,
            kyc_given=kyc is not None,
            documents=sorted(u.kind for u in uploads),
            eligibility=(eligibility or {}).get("outcome"),
        )
        progressed(application, "submitted")
    return application


# -- documents and the needs-info loop -----------------------------------------------------------------


def _may_add_information(actor: Actor, application: Application) -> User:
    user = actor.require_person(PERMISSIONS[ApplicationCommand.RESPOND], application)
    if application.status not in OPEN:
        raise TransitionNotAllowed(
            _("Documents can be added only while the application is waiting for review or for information."),
            current_status=application.status,
        )
    return user


def document_upload(*, actor: Actor, number: str, upload: kyc_data.Upload) -> KycDocument:
    """Add (or replace) one KYC document while the application is open."""
    content_type = kyc_data.check_upload(upload)
    with transaction.atomic():
        application = application_for(actor, number, lock=True)
        user = _may_add_information(actor, application)
        KycDocument.objects.filter(application=application, kind=upload.kind, replaced=False).update(
            replaced=True
        )
        document = kyc_data.sealed_document(application, upload, content_type, user.pk, now())
        document.save()
        record(
            actor,
            Entry(
                event_type=EventType.KYC_DOCUMENT_UPLOADED,
                subject_type="application",
                subject_id=application.number,
                after={"kind": upload.kind, "size": document.size, "content_type": content_type},
            ),
        )
    return document


def application_respond(
    *,
    actor: Actor,
    number: str,
    note: str,
    kyc: dict[str, Any] | None = None,
    documents: Sequence[kyc_data.Upload] = (),
) -> Application:
    """Answer a request for more information: the application goes back to the review queue and its
    review clock starts again."""
    note = clean_text(note).strip()
    if not note:
        raise ValidationFailed(_("Say what you changed or added."), field="note")
    types = [kyc_data.check_upload(u) for u in documents]
    with transaction.atomic():
        application = application_for(actor, number, lock=True)
        user = _may_add_information(actor, application)
        if application.status != S.NEEDS_INFO:
            raise TransitionNotAllowed(
                _("Nobody asked for more information on this application."), current_status=application.status
            )
        fields: dict[str, Any] = {
            "review_due_at": now() + timedelta(hours=policy()["REVIEW_SLA_HOURS"]),
            "reminded_at": None,
        }
        if kyc:
            cleaned = kyc_data.clean_kyc(kyc, enterprise=application.merchant_kind == MerchantKind.ENTERPRISE)
            fields["kyc_sealed"] = kyc_data.seal_kyc(application, cleaned)
            fields["kyc_checked_on"] = today()
        for upload, content_type in zip(documents, types, strict=True):
            KycDocument.objects.filter(application=application, kind=upload.kind, replaced=False).update(
                replaced=True
            )
            kyc_data.sealed_document(application, upload, content_type, user.pk, now()).save()
        move(application, ApplicationCommand.RESPOND, **fields)
        audit(
            actor,
            application,
            EventType.APPLICATION_INFO_GIVEN,
            note=note,
            kyc_changed=bool(kyc),
            documents=sorted(u.kind for u in documents),
        )
        progressed(application, "info_given")
    return application


# -- review (maker-checker) ------------------------------------------------------------------------------


def application_review(
    *,
    actor: Actor,
    number: str,
    decision: str,
    reason: str = "",
    reasons: Sequence[str] = (),
    checked: Sequence[str] = (),
) -> Application:
    """A reviewer decides, never on an application they submitted (maker-checker).

    Rejecting or asking for more information takes one or more preset ``reasons`` (``enrollment/review.py``;
    "other" needs a note); ``reason`` is the reviewer's note, which the applicant reads too. Approving
    takes no reasons and needs every required document, and every checklist item of every document
    present ticked in ``checked``. The reasons and the ticked checklist are stored with the decision
    (the application's ``review_reasons``, the audit row's ``reasons`` and ``checklist``).
    """
    note = clean_text(reason).strip()
    command = DECISIONS.get(decision)
    if command is None:
        raise ValidationFailed(_("Unknown decision."), field="decision", allowed=list(DECISIONS))
    codes = review.clean_reasons(reasons, note, required=command != ApplicationCommand.APPROVE)
    with transaction.atomic():
        application = application_for(actor, number, lock=True)
        user = actor.require_person(PERMISSIONS[command], application)
        if application.submitted_by_id == user.pk:
            raise PermissionDenied(_("You cannot review an application you submitted (maker-checker)."))
        if application.status != S.SUBMITTED:
            raise TransitionNotAllowed(
                _("Only an application waiting for review can be decided."), current_status=application.status
            )
        present = list(current_documents(application).values_list("kind", flat=True))
        ticked = review.clean_checked(checked, present)
        recorded = {"note": note, "reason": codes[0] if codes else "", "reasons": codes, "checklist": ticked}
        told = {"reason": note, "reasons": ",".join(codes)}
        decided = {"reviewed_by": user, "decided_at": now(), "decision_reason": note, "review_reasons": codes}
        if command == ApplicationCommand.REQUEST_INFO:
            move(application, command, info_request=note, review_reasons=codes, reviewed_by=user)
            audit(actor, application, EventType.APPLICATION_INFO_REQUESTED, **recorded)
            progressed(application, "info_requested", **told)
        elif command == ApplicationCommand.REJECT:
            move(application, command, **decided)
            audit(actor, application, EventType.APPLICATION_REJECTED, **recorded)
            progressed(application, "rejected", **told)
        else:
            missing = missing_documents(application)
            if missing:
                raise GuardFailed(
                    _("Documents are missing: %(kinds)s. Ask for them instead.")
                    % {"kinds": ", ".join(str(DocumentKind(k).label) for k in missing)},
                    guard="documents_complete",
                    missing=missing,
                )
            left = review.unticked(present, ticked)
            if left:
                raise GuardFailed(
                    _("Tick every checklist item of every document before approving: %(items)s.")
                    % {"items": "; ".join(review.item_label(code) for code in left)},
                    guard="checklist_complete",
                    unticked=left,
                )
            move(application, command, **decided)
            open_merchant(application)
            audit(
                actor,
                application,
                EventType.APPLICATION_APPROVED,
                **recorded,
                merchant=application.merchant.mid if application.merchant else None,
            )
            progressed(application, "approved", reason=note)
    return application


def review_remind_sweep(*, actor: Actor) -> int:
    """Remind reviewers, once per review clock, of applications whose review is due within
    ``REMIND_BEFORE_HOURS`` (or overdue). Safe to run any number of times."""
    horizon = now() + timedelta(hours=policy()["REMIND_BEFORE_HOURS"])
    due = list(
        Application.objects.filter(status=S.SUBMITTED, reminded_at__isnull=True, review_due_at__lte=horizon)
        .select_related("agent", "agent__organisation", "merchant")
        .order_by("review_due_at")[:500]
    )
    sent = 0
    for application in due:
        with transaction.atomic():
            claimed = Application.objects.filter(
                pk=application.pk, reminded_at__isnull=True, status=S.SUBMITTED
            ).update(reminded_at=now())
            if not claimed:
                continue
            audit(
                actor,
                application,
                EventType.APPLICATION_REMINDED,
                review_due_at=application.review_due_at.isoformat(),
            )
            progressed(application, "review_reminded")
            sent += 1
    return sent


# -- reading personal data (audited) ----------------------------------------------------------------------


def kyc_reveal(*, actor: Actor, number: str) -> kyc_data.Kyc | None:
    """The application's KYC values, for those who must check them; the read is an audit row."""
    with transaction.atomic():
        application = application_for(actor, number)
        actor.require_person("enrollment.view_kyc", application)
        values = kyc_data.open_kyc(application)
        record(
            actor,
            Entry(event_type=EventType.KYC_VIEWED, subject_type="application", subject_id=application.number),
        )
    return values


def kyc_document_read(*, actor: Actor, number: str, document_id: int) -> tuple[str, str, bytes]:
    """(file name, content type, content) of one document; the read is an audit row."""
    with transaction.atomic():
        application = application_for(actor, number)
        actor.require_person("enrollment.view_kyc", application)
        document = KycDocument.objects.filter(application=application, pk=document_id).first()
        if document is None:
            raise NotFound()
        name, content = kyc_data.open_document(document)
        record(
            actor,
            Entry(
                event_type=EventType.KYC_DOCUMENT_VIEWED,
                subject_type="application",
                subject_id=application.number,
                after={"kind": document.kind, "document": document.pk},
            ),
        )
    return name, document.content_type, content
