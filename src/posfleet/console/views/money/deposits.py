"""Deposit release (押金退还): refund part, forfeit the rest, with a reason and a fresh identity
verification; exactly once. A dialog in the money pages (htmx), a page of its own without JavaScript.

Two steps, so that money moves only for an amount a person has seen as the system read it (issue 11:
"１００" in another script would have been read as 100): the amounts are posted and read back ("You are
refunding ¥100.00 to … and forfeiting …"); the confirmation posts them again with the refund it showed
(``confirm_fen``) and the step-up code, and releases the deposit only when the refund still reads the
same. Nothing is verified or moved before the confirmation; "Change" goes back to the amounts."""

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
from posfleet.console.views.money.forms import DepositReleaseForm, ReleaseReason
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
    posted = request.POST if request.method == "POST" else None
    confirming = posted is not None and "confirm_fen" in posted and posted.get("step") != "edit"
    form = DepositReleaseForm(
        posted, amount_fen=deposit.amount_fen, needs_code=confirming and remaining == 0, confirming=confirming
    )
    context: dict[str, Any] = {
        "deposit": deposit,
        "form": form,
        "needs_code": remaining == 0,
        "step_up_minutes": (remaining + 59) // 60,
        "released": deposit.status != Deposit.Status.HELD,
    }
    if posted is None:
        return render_page(request, TEMPLATE, context, partial="dialog")
    if context["released"]:
        context["refusal"] = DepositAlreadyReleased()
        return render_page(request, TEMPLATE, context, partial="dialog", status=409)
    if posted.get("step") == "edit" or not form.is_valid():
        if confirming and form.amounts_read:  # only the code or the confirmation is wrong
            return _confirmation(request, context, form, form.cleaned_data)
        return render_page(request, TEMPLATE, context, partial="dialog")
    if not confirming:  # the amounts as read, to be confirmed with the step-up code
        confirm = DepositReleaseForm(amount_fen=deposit.amount_fen, needs_code=remaining == 0)
        return _confirmation(request, context, confirm, form.cleaned_data, typed=posted.get("refund", ""))
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
            if field in {"refund", "reason", "note"}:
                form.add_error(field, str(exc.detail))
                return render_page(request, TEMPLATE, context, partial="dialog")
            form.add_error(None, str(exc.detail))
        else:
            return _done(request, released, context)
    return _confirmation(request, context, form, form.cleaned_data)


def _confirmation(
    request: HttpRequest,
    context: dict[str, Any],
    form: DepositReleaseForm,
    data: dict[str, Any],
    typed: str = "",
) -> HttpResponse:
    """The read-back of ``data`` (the amounts as read): what will be refunded and forfeited, and what
    was typed when it reads differently; the amounts go back in hidden fields with the refund shown
    (``confirm_fen``), beside the step-up code of ``form``."""
    deposit: Deposit = context["deposit"]
    refund = int(data["refund"])
    context.update(
        form=form,
        confirm={
            "refund_fen": refund,
            "forfeit_fen": deposit.amount_fen - refund,
            "reason": data["reason"],
            "reason_label": dict(ReleaseReason.CHOICES).get(data["reason"], data["reason"]),
            "note": data.get("note", ""),
            "typed": typed if typed.strip() != format_fen(refund, symbol=False).replace(",", "") else "",
        },
    )
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
