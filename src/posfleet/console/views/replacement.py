"""Replacement (换机) from the terminal page: choose the new SN from the agent's stock, a reason and a
note, verify identity, and ``enrollment.replacement.terminal_replace`` does the rest.

GET shows the dialog (loaded into the modal by htmx; a page of its own without JavaScript); POST
runs the service and shows the result with links to both terminals.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from posfleet.console.forms import ReplaceForm
from posfleet.console.views.base import console_login_required, is_htmx, render_page
from posfleet.console.views.money.common import forbidden, signed_in
from posfleet.enrollment.services.replacement import may_replace, replacement_stock, terminal_replace
from posfleet.fleet import selectors as fleet
from posfleet.iam.web import actor_from_form, step_up_remaining_seconds
from posfleet.platform.errors import DomainError, NotFound, PermissionDenied

TEMPLATE = "console/terminals/replace.html"


@sensitive_post_parameters("totp")
@console_login_required
@never_cache
@require_http_methods(["GET", "POST"])
def terminal_replace_view(request: HttpRequest, sn: str) -> HttpResponse:
    user = signed_in(request)
    try:
        terminal = fleet.terminal_for(user, sn)
    except NotFound as exc:
        raise Http404 from exc  # others' terminals are simply not there
    if not may_replace(user, terminal):
        return forbidden(request, _("You may not replace this terminal."))
    stock = [
        (stock_sn, f"{stock_sn} · {maker} {name}")
        for stock_sn, maker, name in replacement_stock(user, terminal).values_list(
            "sn", "model__maker", "model__name"
        )
    ]
    remaining = step_up_remaining_seconds(request)
    form = ReplaceForm(
        request.POST if request.method == "POST" else None, stock=stock, needs_code=remaining == 0
    )
    context: dict[str, Any] = {
        "terminal": terminal,
        "form": form,
        "stock_count": len(stock),
        "needs_code": remaining == 0,
        "step_up_minutes": (remaining + 59) // 60,
    }
    if request.method == "POST" and form.is_valid():
        actor = actor_from_form(request, form)
        if actor is not None:
            try:
                outcome = terminal_replace(
                    actor=actor,
                    old_sn=terminal.sn,
                    new_sn=form.cleaned_data["new_sn"],
                    reason=form.cleaned_data["reason"],
                    note=form.cleaned_data.get("note", ""),
                )
            except NotFound as exc:
                raise Http404 from exc
            except PermissionDenied:
                return forbidden(request, _("You may not replace this terminal."))
            except DomainError as exc:
                form.add_error(None, str(exc.detail))
            else:
                context["outcome"] = outcome
                response = render_page(request, TEMPLATE, context, partial="result")
                if is_htmx(request):
                    response["HX-Trigger"] = "terminals-changed"
                return response
    return render_page(request, TEMPLATE, context, partial="dialog")
