"""Applications in the console: the merchant's and agent's "where is my application" page with a
progress picture and what happens next, the reviewer's queue with its clock, the application form
(merchant data, KYC values and files, terminals, the contract offer), and each step's button.

Every step calls its one service function (``enrollment.applications`` / ``enrollment.fulfilment``);
a refusal shows its message and changes nothing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.csp import CSP
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from posfleet.billing.models import RatePlan
from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import forbidden, own_merchant, signed_in
from posfleet.enrollment import review, selectors, states
from posfleet.enrollment.kyc import EXTENSIONS, PREVIEW, Kyc, Upload
from posfleet.enrollment.models import Application, DocumentKind
from posfleet.enrollment.services import applications as apps
from posfleet.enrollment.services import fulfilment
from posfleet.fleet.models import Kind
from posfleet.iam.models import Role
from posfleet.iam.web import actor_from_request
from posfleet.parties.selectors import Merchant, MerchantKind
from posfleet.platform.clock import now
from posfleet.platform.errors import DomainError, NotFound, PermissionDenied
from posfleet.platform.money import format_fen

PAGE = 25


# -- list ---------------------------------------------------------------------------------------------


@console_login_required
@require_GET
def application_list(request: HttpRequest) -> HttpResponse:
    """The queues as tabs with their counts (``states.QUEUES``, within what the reader may see) and a
    search that keeps the tab."""
    user = signed_in(request)
    visible = selectors.visible_applications(user)
    reviewer = user.has_perm("enrollment.review_application")
    query = request.GET.get("q", "").strip()[:64]
    found = selectors.search_applications(visible, query)
    counts = selectors.queue_counts(found)
    tab = request.GET.get("tab", "review" if reviewer else "all")
    statuses = states.QUEUES.get(tab) or states.GROUPS.get(tab)  # the groups: links from before the queues
    qs = found.filter(status__in=statuses) if statuses else found
    order = ("review_due_at", "id") if tab in {"review", "open"} else ("-submitted_at", "-id")
    page = Paginator(qs.order_by(*order), PAGE).get_page(request.GET.get("page"))
    moment = now()
    rows = [
        {
            "application": a,
            "reached": states.PROGRESS.get(a.status, 0),
            "overdue": states.review_overdue(a.status, a.review_due_at, moment),
            "hours_left": int((a.review_due_at - moment).total_seconds() // 3600)
            if a.status == states.ApplicationStatus.SUBMITTED
            else None,
        }
        for a in page.object_list
    ]
    return render_page(
        request,
        "console/applications/list.html",
        {
            "page": page,
            "rows": rows,
            "tab": tab,
            "q": query,
            "tabs": [
                (key, label, counts[key]) for key, label in [*states.QUEUE_LABELS.items(), ("all", _("All"))]
            ],
            "may_apply": user.has_perm("enrollment.submit_application"),
            "step_count": len(states.STEPS),
        },
    )


# -- the form ------------------------------------------------------------------------------------------


class ApplicationForm(forms.Form):
    merchant_kind = forms.ChoiceField(label=gettext_lazy("Merchant kind"), choices=MerchantKind.choices)
    shop_name = forms.CharField(label=gettext_lazy("Shop name"), max_length=200)
    legal_name = forms.CharField(label=gettext_lazy("Legal name"), max_length=200)
    mcc = forms.CharField(
        label=gettext_lazy("MCC"), max_length=4, help_text=gettext_lazy("4 digits, e.g. 5411 for a grocery.")
    )
    contact_name = forms.CharField(label=gettext_lazy("Contact"), max_length=100)
    contact_phone = forms.CharField(label=gettext_lazy("Contact phone"), max_length=32)
    contact_email = forms.EmailField(label=gettext_lazy("Contact e-mail"), required=False)
    store_name = forms.CharField(label=gettext_lazy("Store"), max_length=200)
    city = forms.CharField(label=gettext_lazy("City"), max_length=64)
    address = forms.CharField(label=gettext_lazy("Delivery and installation address"), max_length=255)
    terminal_kind = forms.ChoiceField(
        label=gettext_lazy("Terminal kind"), choices=Kind.choices, initial=Kind.SMART
    )
    terminal_count = forms.IntegerField(
        label=gettext_lazy("How many terminals"), min_value=1, max_value=50, initial=1
    )
    plan = forms.ChoiceField(label=gettext_lazy("Rate plan"))
    legal_person = forms.CharField(label=gettext_lazy("Legal representative"), max_length=100, required=False)
    id_number = forms.CharField(label=gettext_lazy("ID card number"), max_length=18, required=False)
    licence_no = forms.CharField(
        label=gettext_lazy("Unified social credit code"),
        max_length=18,
        required=False,
        help_text=gettext_lazy(
            "On the business licence; an individual business without one leaves it empty."
        ),
    )
    bank_name = forms.CharField(label=gettext_lazy("Bank and branch"), max_length=100, required=False)
    bank_account = forms.CharField(
        label=gettext_lazy("Settlement account number"), max_length=40, required=False
    )
    account_holder = forms.CharField(label=gettext_lazy("Account holder"), max_length=100, required=False)
    id_card = forms.FileField(label=DocumentKind.ID_CARD.label, required=False)
    business_licence = forms.FileField(label=DocumentKind.BUSINESS_LICENCE.label, required=False)
    bank_proof = forms.FileField(label=DocumentKind.BANK_PROOF.label, required=False)
    agent = forms.CharField(label=gettext_lazy("Agent code"), max_length=16, required=False)
    accept_offer = forms.BooleanField(
        label=gettext_lazy("I have read the contract offer and accept it."), required=False
    )

    def __init__(self, *args: Any, merchant: Merchant | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plan = self.fields["plan"]
        assert isinstance(plan, forms.ChoiceField)
        plan.choices = [
            (p.code, p.name) for p in RatePlan.objects.filter(is_competitor=False).order_by("code")
        ]
        self.merchant = merchant
        if merchant is not None:  # a merchant applies for itself: its record fills the merchant part
            for name in ("merchant_kind", "shop_name", "legal_name", "mcc"):
                self.fields[name].required = False
                self.fields[name].disabled = True
            self.initial.update(
                merchant_kind=merchant.kind,
                shop_name=merchant.name,
                legal_name=merchant.legal_name,
                mcc=merchant.mcc,
                contact_name=merchant.contact_name,
                contact_phone=merchant.contact_phone,
                contact_email=merchant.contact_email,
            )
        for field in self.fields.values():
            widget = field.widget
            css = (
                "form-check-input"
                if isinstance(widget, forms.CheckboxInput)
                else ("form-select" if isinstance(widget, forms.Select) else "form-control")
            )
            widget.attrs.setdefault("class", css)

    def request(self) -> apps.Request:
        data = self.cleaned_data
        applicant = apps.Applicant(
            **{name: str(data.get(name) or "") for name in apps.Applicant.__dataclass_fields__}
        )
        kyc = {name: data.get(name) or "" for name in Kyc.field_names()}
        uploads = []
        for kind in DocumentKind.values:
            upload = data.get(kind)
            if upload:
                uploads.append(Upload(kind, upload.name, upload.read()))
        return apps.Request(
            applicant=applicant,
            terminal_kind=data["terminal_kind"],
            terminal_count=data["terminal_count"],
            accept_offer=bool(data.get("accept_offer")),
            plan_code=data["plan"],
            kyc=kyc if any(kyc.values()) else None,
            documents=uploads,
            agent_code=data.get("agent") or "",
        )


def _months(n: int) -> str:
    return ngettext("%(n)s month", "%(n)s months", n) % {"n": n}


def _offer_rows() -> list[tuple[str, str]]:
    offer = apps.standard_offer()
    return [
        (_("Term"), _months(offer.term_months)),
        (_("Annual service and SIM fee"), format_fen(offer.annual_fee_fen)),
        (_("Deposit (refunded at closure, less what is owed)"), format_fen(offer.deposit_fen)),
        (_("Minimum term"), _months(offer.min_term_months)),
        (
            _("Ending before the minimum term"),
            _("%(fee)s for each remaining month, at most %(cap)s")
            % {"fee": format_fen(offer.penalty_monthly_fen), "cap": format_fen(offer.penalty_cap_fen or 0)},
        ),
        (_("Device recovery fee"), format_fen(offer.recovery_fee_fen)),
        (
            _("Device recovery value (credited if the device comes back as new)"),
            format_fen(offer.recovery_value_fen),
        ),
        (
            _("Damage (inspection grade A / B / C)"),
            " / ".join(format_fen(v) for v in (offer.damage_prices or {}).values()),
        ),
    ]


@console_login_required
@require_http_methods(["GET", "POST"])
def application_new(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    if not user.has_perm("enrollment.submit_application"):
        return forbidden(request, _("Applications are made by merchants, their agents and platform admins."))
    merchant = own_merchant(user)
    form = ApplicationForm(request.POST or None, request.FILES or None, merchant=merchant)
    if request.method == "POST" and form.is_valid():
        try:
            application = apps.application_submit(actor=actor_from_request(request), request=form.request())
        except DomainError as exc:
            field = exc.params.get("field")
            form.add_error(field if field in form.fields else None, str(exc.detail))
        else:
            messages.success(
                request,
                _("Application %(number)s is submitted. You can follow it on this page.")
                % {"number": application.number},
            )
            return HttpResponseRedirect(reverse("console:application", args=[application.number]))
    return render_page(
        request,
        "console/applications/form.html",
        {
            "form": form,
            "offer": _offer_rows(),
            "merchant": merchant,
            "show_agent": user.role in {Role.ADMIN, Role.AGENT},
        },
    )


# -- one application -------------------------------------------------------------------------------------


def _application(request: HttpRequest, number: str) -> Application:
    try:
        return selectors.application_for(actor_from_request(request), number)
    except NotFound as exc:
        raise Http404 from exc


def _detail_context(request: HttpRequest, application: Application, **extra: Any) -> dict[str, Any]:
    actor = actor_from_request(request)
    view = selectors.application_view(actor, application)
    may_kyc = actor.may("enrollment.view_kyc", application)
    staff_text = actor.may("enrollment.review_application", application)
    return {
        "application": application,
        "view": view,
        "actions": {command.value for command in view.actions},
        # Reads, not steps: who opens KYC data and documents, who reads the reviewers' words.
        "may": {"kyc": may_kyc, "staff_text": staff_text},
        "kind_label": Kind(application.terminal_kind).label
        if application.terminal_kind in Kind.values
        else "",
        "missing": [DocumentKind(k).label for k in view.missing],
        "documents": [
            {
                "document": d,
                "preview": PREVIEW.get(d.content_type) if may_kyc else None,
                "checklist": review.CHECKLISTS.get(d.kind, ()),
            }
            for d in view.documents
        ],
        "reasons": review.ReviewReason.choices,
        # The reviewer reads the short labels, the applicant what each means in plain words.
        "review_reasons": [
            review.reason_label(code) if staff_text else review.in_plain_words([code])[0]
            for code in application.review_reasons or []
            if code in review.ReviewReason.values
        ],
        "kinds": DocumentKind.choices,
        "checks": [(name, fulfilment.CHECK_LABELS[name]) for name in fulfilment.CHECKS],
        "check_labels": fulfilment.CHECK_LABELS,
        "eligibility": _assessment(application),
        "offer": [(k, v) for k, v in (application.offer or {}).items()],
        **extra,
    }


def _assessment(application: Application) -> Any:
    """The stored re-application decision, rebuilt with its policy version so it reads in the viewer's
    language (None when there is none, or it can no longer be rebuilt)."""
    if not application.eligibility:
        return None
    from posfleet.enrollment.eligibility import Assessment

    try:
        return Assessment.from_json(application.eligibility)
    except ValueError:  # PolicyError is a ValueError: that version's file changed since
        return None


@console_login_required
@require_GET
def application_detail(request: HttpRequest, number: str) -> HttpResponse:
    application = _application(request, number)
    return render_page(request, "console/applications/detail.html", _detail_context(request, application))


def _uploads(request: HttpRequest) -> list[Upload]:
    return [
        Upload(kind, f.name or kind, f.read())
        for kind in DocumentKind.values
        if (f := request.FILES.get(kind))
    ]


@console_login_required
@require_POST
def application_step(request: HttpRequest, number: str, step: str) -> HttpResponse:
    """One step's button: review, respond, upload, allocate, ship, deliver, install, test, or reveal KYC."""
    actor = actor_from_request(request)
    post = request.POST
    try:
        if step == "kyc":
            values = apps.kyc_reveal(actor=actor, number=number)
            application = _application(request, number)
            return render_page(
                request, "console/applications/detail.html", _detail_context(request, application, kyc=values)
            )
        if step == "review":
            apps.application_review(
                actor=actor,
                number=number,
                decision=post.get("decision", ""),
                reason=post.get("note", ""),
                reasons=post.getlist("reasons"),
                checked=post.getlist("checked"),
            )
            done = _("Decision recorded.")
        elif step == "respond":
            apps.application_respond(
                actor=actor, number=number, note=post.get("note", ""), documents=_uploads(request)
            )
            done = _("Sent back for review.")
        elif step == "upload":
            for upload in _uploads(request):
                apps.document_upload(actor=actor, number=number, upload=upload)
            done = _("Documents added.")
        elif step == "allocate":
            sns = [sn for sn in post.get("sns", "").replace(",", " ").split() if sn]
            fulfilment.application_allocate(actor=actor, number=number, sns=sns or None)
            done = _("Terminals reserved.")
        elif step == "ship":
            fulfilment.application_ship(
                actor=actor,
                number=number,
                carrier=post.get("carrier", ""),
                tracking_no=post.get("tracking_no", ""),
            )
            done = _("Marked as shipped; the merchant is told the tracking number.")
        elif step == "deliver":
            fulfilment.application_deliver(actor=actor, number=number)
            done = _("Delivery confirmed.")
        elif step == "install":
            line = fulfilment.application_install(actor=actor, number=number, sn=post.get("sn", ""))
            done = _("Terminal %(sn)s installed with TID %(tid)s; run its test transaction next.") % {
                "sn": line.terminal.sn,
                "tid": line.terminal.tid,
            }
        elif step == "test":
            result = fulfilment.application_test(
                actor=actor,
                number=number,
                sn=post.get("sn", ""),
                checks={name: post.get(name) == "on" for name in fulfilment.CHECKS},
            )
            if not result.passed:
                messages.warning(
                    request,
                    _(
                        "The test did not pass (%(failed)s). The terminal stays inactive; "
                        "fix it and test again."
                    )
                    % {"failed": ", ".join(str(fulfilment.CHECK_LABELS[name]) for name in result.failed)},
                )
                return HttpResponseRedirect(reverse("console:application", args=[number]))
            done = _("The terminal passed its test and is active.")
        else:
            raise Http404
    except NotFound as exc:
        raise Http404 from exc
    except PermissionDenied as exc:
        return forbidden(request, str(exc.detail))
    except DomainError as exc:
        messages.error(request, str(exc.detail))
        if step == "review":  # the page again with what the reviewer ticked and wrote, nothing lost
            application = _application(request, number)
            posted = {
                "decision": post.get("decision", ""),
                "note": post.get("note", ""),
                "reasons": post.getlist("reasons"),
                "checked": post.getlist("checked"),
            }
            context = _detail_context(request, application, posted=posted)
            return render_page(request, "console/applications/detail.html", context)
    else:
        messages.success(request, done)
    return HttpResponseRedirect(reverse("console:application", args=[number]))


def _document_response(request: HttpRequest, number: str, document_id: int, *, inline: bool) -> HttpResponse:
    """One KYC document's bytes for whoever may open it (the read is audited by the service); everyone
    else gets 404, as if it did not exist. The content type is the one stored at upload (read from the
    file's first bytes), never guessed from its name; the file name is the application number and the
    document id, never the applicant's own."""
    try:
        _name, content_type, content = apps.kyc_document_read(
            actor=actor_from_request(request), number=number, document_id=document_id
        )
    except (NotFound, PermissionDenied) as exc:
        raise Http404 from exc
    if inline and content_type not in PREVIEW:
        raise Http404
    response = HttpResponse(content, content_type=content_type)
    disposition = "inline" if inline else "attachment"
    extension = EXTENSIONS.get(content_type, "bin")
    response["Content-Disposition"] = f'{disposition}; filename="{number}-{document_id}.{extension}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


@console_login_required
@require_GET
def application_document(request: HttpRequest, number: str, document_id: int) -> HttpResponse:
    """Download a document."""
    return _document_response(request, number, document_id, inline=False)


# The console's policy, except who may frame this answer.
PREVIEW_CSP: dict[str, Any] = {**settings.SECURE_CSP, "frame-ancestors": [CSP.SELF]}


@csp_override(PREVIEW_CSP)
@xframe_options_sameorigin
@console_login_required
@require_GET
def application_document_preview(request: HttpRequest, number: str, document_id: int) -> HttpResponse:
    """A PDF or image document shown inline on the review page: this answer alone may be framed, and
    only by the site itself (the rest of the console keeps ``frame-ancestors 'none'`` and ``DENY``)."""
    return _document_response(request, number, document_id, inline=True)
