"""Asking for a closure (注销) in three screens, from a terminal's page or the terminal list:

1. the chosen terminal(s) — one, or several of one merchant picked on the list — with the reason and a
   note; what would stop the closure (a terminal not closable, already in a case) shows here at once;
2. the quote (``closure.services.closure_quote``): every money line and why, the expected refund or
   what will be owed, and the confirmation with a TOTP code. The confirmation posts the quote's digest:
   when the amounts changed meanwhile the screen shows the new quote and asks again, before a code is
   spent on it;
3. the case's page, with a message (``closure.services.closure_request`` made the case).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from posfleet.closure.quote import effect_text, line_text
from posfleet.closure.services import Proposal, QuoteStale, closure_quote, closure_request
from posfleet.closure.states import NOTE_REQUIRED_REASONS, STAFF_ONLY_REASONS, ClosureReason
from posfleet.console.commands import parse_sns
from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import forbidden, signed_in
from posfleet.fleet import selectors as fleet
from posfleet.fleet.models import Terminal
from posfleet.fleet.states import CLOSABLE
from posfleet.iam.forms import BootstrapMixin, WithTotpMixin
from posfleet.iam.models import Role, User
from posfleet.iam.web import actor_from_form, actor_from_request, step_up_remaining_seconds
from posfleet.platform.errors import DomainError, NotFound, PermissionDenied

TEMPLATE = "console/closures/request.html"
REQUESTER_ROLES = frozenset({Role.ADMIN, Role.AGENT, Role.MERCHANT})


def may_close(user: User, terminal: Terminal) -> bool:
    """Whether the terminal pages offer "Close terminal" to ``user`` (the quote checks it all again)."""
    return bool(
        terminal.status in CLOSABLE
        and terminal.merchant_id is not None
        and user.has_perm("closure.request_closure", terminal.merchant)
    )


def may_close_in_list(user: User, terminal: Terminal) -> bool:
    """The terminal list's cheaper question (no lookup of the merchant's agent per row): the list only
    holds terminals in the user's scope, and screen 1 asks the rule itself."""
    return bool(
        user.role in REQUESTER_ROLES and terminal.status in CLOSABLE and terminal.merchant_id is not None
    )


def offered_reasons(user: User) -> list[tuple[str, str]]:
    """Closure reasons ``user`` may give: provider-initiated is for the provider's staff only."""
    staff = user.has_perm("closure.review_closure")
    return [
        (value, str(label))
        for value, label in ClosureReason.choices
        if staff or value not in STAFF_ONLY_REASONS
    ]


class ReasonForm(BootstrapMixin, forms.Form):
    reason = forms.ChoiceField(
        label=gettext_lazy("Why close"), widget=forms.Select(attrs={"data-testid": "closure-reason"})
    )
    note = forms.CharField(
        label=gettext_lazy("Note"),
        required=False,
        max_length=500,
        help_text=gettext_lazy("Needed when the reason is “other”."),
        widget=forms.Textarea(attrs={"rows": 2, "data-testid": "closure-note"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["reason"].choices = [  # type: ignore[attr-defined]
            ("", _("Choose a reason…")),
            *offered_reasons(user),
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("reason") in NOTE_REQUIRED_REASONS and not (data.get("note") or "").strip():
            self.add_error("note", _("Say in the note what the other reason is."))
        return data


class ConfirmForm(WithTotpMixin, ReasonForm):
    digest = forms.CharField(max_length=64, widget=forms.HiddenInput)


def _terminals(user: User, sns: list[str]) -> list[Terminal]:
    """The chosen terminals as ``user`` sees them: another's terminal is simply not there (404)."""
    try:
        return [fleet.terminal_for(user, sn) for sn in sns]
    except NotFound as exc:
        raise Http404 from exc


def _quote_context(proposal: Proposal) -> dict[str, Any]:
    quote = proposal.quote.as_json()
    return {
        "quote": quote,
        "lines": [
            {**line, "text": line_text(line), "effect_text": effect_text(line["effect"])}
            for line in quote["lines"]
        ],
    }


@sensitive_post_parameters("totp")
@console_login_required
@never_cache
@require_http_methods(["GET", "POST"])
def closure_new(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    if user.role not in REQUESTER_ROLES:
        return forbidden(request, _("Closures are asked for by merchants, their agents and platform admins."))
    data = request.POST if request.method == "POST" else request.GET
    sns = parse_sns(data.getlist("sn"))
    terminals = _terminals(user, sns)
    for terminal in terminals:
        if terminal.merchant_id is not None and not user.has_perm(
            "closure.request_closure", terminal.merchant
        ):
            return forbidden(request, _("You may not ask for the closure of this terminal."))
    remaining = step_up_remaining_seconds(request)
    needs_code = remaining == 0
    context: dict[str, Any] = {
        "sns": sns,
        "sn_query": urlencode([("sn", sn) for sn in sns]),
        "terminals": terminals,
        "screen": 1,
        "needs_code": needs_code,
        "step_up_minutes": (remaining + 59) // 60,
        "blocked": "",
    }
    step = request.POST.get("step", "") if request.method == "POST" else ""
    if step == "confirm":
        return _confirm(request, ConfirmForm(request.POST, user=user, needs_code=needs_code), context)
    form = ReasonForm(request.POST if step == "quote" else None, user=user)
    context["form"] = form
    if not sns:
        return render_page(request, TEMPLATE, context)
    actor = actor_from_request(request)
    try:
        proposal = closure_quote(actor=actor, sns=sns)  # what would stop it, shown up front
    except PermissionDenied:
        return forbidden(request, _("You may not ask for the closure of this terminal."))
    except NotFound as exc:
        raise Http404 from exc
    except DomainError as exc:
        context["blocked"] = str(exc.detail)
        return render_page(request, TEMPLATE, context)
    if step == "quote" and form.is_valid():
        confirm = ConfirmForm(user=user, needs_code=needs_code)
        context.update(screen=2, form=confirm, chosen=_chosen(form.cleaned_data), **_quote_context(proposal))
    return render_page(request, TEMPLATE, context)


def _chosen(data: Any) -> dict[str, str]:
    """The reason and note carried from screen 1 to screen 2 (hidden fields, checked again on confirm)."""
    reason = str(data.get("reason") or "")
    labels = dict(ClosureReason.choices)
    return {"reason": reason, "label": str(labels.get(reason, reason)), "note": str(data.get("note") or "")}


def _confirm(request: HttpRequest, form: ConfirmForm, context: dict[str, Any]) -> HttpResponse:
    """Screen 2's button: the current quote first (a changed one is shown again before any code is
    spent), then the code, then the request."""
    sns = context["sns"]
    actor = actor_from_request(request)
    chosen = _chosen({"reason": form.data.get("reason", ""), "note": form.data.get("note", "")})
    context.update(screen=2, form=form, chosen=chosen)
    try:
        proposal = closure_quote(actor=actor, sns=sns)
    except PermissionDenied:
        return forbidden(request, _("You may not ask for the closure of this terminal."))
    except NotFound as exc:
        raise Http404 from exc
    except DomainError as exc:
        context.update(screen=1, blocked=str(exc.detail), form=_back_to_reason(form))
        return render_page(request, TEMPLATE, context)
    context.update(_quote_context(proposal))
    if form.data.get("digest") != proposal.quote.digest:
        return _stale(request, form, context, proposal)
    if not form.is_valid():
        if "reason" in form.errors or "note" in form.errors:
            context.update(screen=1, form=_back_to_reason(form))
        return render_page(request, TEMPLATE, context)
    who = actor_from_form(request, form)
    if who is None:  # a wrong or used code: said on the field, nothing else happened
        return render_page(request, TEMPLATE, context)
    try:
        case = closure_request(
            actor=who,
            sns=sns,
            reason=form.cleaned_data["reason"],
            note=form.cleaned_data.get("note", ""),
            quote_digest=form.cleaned_data["digest"],
        )
    except QuoteStale:
        return _stale(request, form, context, closure_quote(actor=actor, sns=sns))
    except PermissionDenied:
        return forbidden(request, _("You may not ask for the closure of this terminal."))
    except NotFound as exc:
        raise Http404 from exc
    except DomainError as exc:
        field = exc.params.get("field")
        if field in ("reason", "note"):
            back = _back_to_reason(form)
            back.add_error(field, str(exc.detail))
            context.update(screen=1, form=back)
        else:
            form.add_error(None, str(exc.detail))
        return render_page(request, TEMPLATE, context)
    messages.success(
        request,
        _(
            "Closure case %(number)s is open: the terminals stopped taking payments. "
            "Follow each step on this page."
        )
        % {"number": case.number},
    )
    return HttpResponseRedirect(reverse("console:closure", args=[case.number]))


def _back_to_reason(form: ConfirmForm) -> ReasonForm:
    """Screen 1 again, with what was chosen (and why it is refused)."""
    back = ReasonForm(form.data, user=form.user)
    back.is_valid()
    return back


def _stale(
    request: HttpRequest, form: ConfirmForm, context: dict[str, Any], proposal: Proposal
) -> HttpResponse:
    """The amounts changed: the new quote, its digest in the form, and why the screen is back. No code
    was spent on the old one."""
    remaining = step_up_remaining_seconds(request)
    fresh = ConfirmForm(user=form.user, needs_code=remaining == 0)
    context.update(
        screen=2,
        form=fresh,
        stale=True,
        needs_code=remaining == 0,
        step_up_minutes=(remaining + 59) // 60,
        **_quote_context(proposal),
    )
    return render_page(request, TEMPLATE, context)
