"""Deposit release (押金退还): refund part, forfeit the rest, with a reason and a fresh identity
verification; exactly once. A dialog in the money pages (htmx), a page of its own without JavaScript."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from posfleet.billing import selectors as money
from posfleet.billing.errors import DepositAlreadyReleased
from posfleet.billing.models import Deposit
from posfleet.billing.services.deposits import deposit_release
from posfleet.console.views.base import console_login_required, is_htmx, render_page
from posfleet.console.views.money.common import forbidden, may_release_deposit, signed_in
from posfleet.console.views.money.forms import DepositReleaseForm
from posfleet.iam.web import actor_from_form, step_up_remaining_seconds
from posfleet.platform.errors import DomainError, NotFound, StepUpRequired
from posfleet.platform.money import format_fen

TEMPLATE = "console/money/deposit_release.html"


@sensitive_post_parameters("totp")
@never_cache
@console_login_required
@require_http_methods(["GET", "POST"])
def deposit_release_view(request: HttpRequest, pk: int) -> HttpResponse:
    user = signed_in(request)
    try:
        deposit = money.deposit_for(user, pk)
    except NotFound as exc:
        raise Http404 from exc
    if not may_release_deposit(user):
        return forbidden(request, _("Deposits are refunded by reviewers and platform admins."))
    remaining = step_up_remaining_seconds(request)
    form = DepositReleaseForm(
        request.POST if request.method == "POST" else None,
        amount_fen=deposit.amount_fen,
        needs_code=remaining == 0,
    )
    context: dict[str, Any] = {
        "deposit": deposit,
        "form": form,
        "needs_code": remaining == 0,
        "step_up_minutes": (remaining + 59) // 60,
        "released": deposit.status != Deposit.Status.HELD,
    }
    if request.method == "POST":
        if context["released"]:
            context["refusal"] = DepositAlreadyReleased()
            return render_page(request, TEMPLATE, context, partial="dialog", status=409)
        if form.is_valid():
            actor = actor_from_form(request, form)
            if actor is not None:
                try:
                    released = deposit_release(
                        actor=actor,
                        deposit_id=deposit.pk,
                        refund_fen=form.cleaned_data["refund"],
                        reason=form.cleaned_data["reason"],
                        note=form.cleaned_data.get("note", ""),
                    )
                except DepositAlreadyReleased as exc:
                    deposit.refresh_from_db()
                    context.update(released=True, refusal=exc)
                    return render_page(request, TEMPLATE, context, partial="dialog", status=409)
                except StepUpRequired as exc:
                    form.add_error("totp" if "totp" in form.fields else None, str(exc.detail))
                except DomainError as exc:
                    field = exc.params.get("field")
                    form.add_error(field if field in form.fields else None, str(exc.detail))
                else:
                    return _done(request, released, context)
    return render_page(request, TEMPLATE, context, partial="dialog")


def _done(request: HttpRequest, deposit: Deposit, context: dict[str, Any]) -> HttpResponse:
    text = _("Deposit released: %(refund)s refunded, %(forfeit)s forfeited.") % {
        "refund": format_fen(deposit.refunded_fen),
        "forfeit": format_fen(deposit.forfeited_fen),
    }
    if is_htmx(request):
        context.update(deposit=deposit, done=True, released=True)
        response = render_page(request, TEMPLATE, context, partial="dialog")
        response["HX-Trigger"] = "money-changed"
        return response
    messages.success(request, text)
    return HttpResponseRedirect(reverse("console:contract", args=[deposit.contract_id]))
