"""The action dialog: preview which selected terminals a command applies to, then run it.

GET shows the dialog (loaded into the modal by htmx); POST verifies the step-up when the command
needs one, runs ``fleet.services.terminals_bulk_transition`` and shows the result per terminal.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from posfleet.console.commands import commands_for_role, parse_sns, preview
from posfleet.console.forms import ActionForm
from posfleet.console.presentation import command_view
from posfleet.console.views.base import console_login_required, is_htmx, render_page
from posfleet.fleet.jobs import BULK, actor_params
from posfleet.fleet.services import terminals_bulk_transition
from posfleet.fleet.states import SPECS, Command
from posfleet.iam.models import User
from posfleet.iam.web import actor_from_form, step_up_remaining_seconds
from posfleet.platform import jobs
from posfleet.platform.errors import DomainError

TEMPLATE = "console/actions/dialog.html"


@sensitive_post_parameters("totp")
@console_login_required
@never_cache
@require_http_methods(["GET", "POST"])
def terminal_action(request: HttpRequest, command: str) -> HttpResponse:
    try:
        cmd = Command(command)
    except ValueError as exc:
        raise Http404 from exc
    user = request.user
    assert isinstance(user, User)
    data = request.POST if request.method == "POST" else request.GET
    sns = parse_sns(data.getlist("sn"))
    offered = cmd in commands_for_role(user)
    step_up = SPECS[cmd].step_up
    remaining = step_up_remaining_seconds(request) if step_up else 0
    # A user whose role cannot run the command is not asked for a code: the service refuses anyway.
    needs_code = step_up and offered and remaining == 0
    form = ActionForm(
        request.POST if request.method == "POST" else None,
        command=cmd,
        user=user,
        single=len(sns) == 1,
        needs_code=needs_code,
    )
    context: dict[str, Any] = {
        "command": command_view(cmd),
        "form": form,
        "sns": sns,
        "step_up": step_up,
        "needs_code": needs_code,
        "step_up_minutes": (remaining + 59) // 60,
    }
    if request.method == "POST":
        if not sns:
            form.add_error(None, _("Select at least one terminal."))
        elif form.is_valid():
            actor = actor_from_form(request, form)
            if actor is not None and len(sns) > settings.POSFLEET["BULK_SYNC_MAX"]:
                # Hundreds of terminals: the worker runs it, the dialog shows a live progress bar.
                job = jobs.start(
                    BULK,
                    user_id=user.pk,
                    total=len(sns),
                    params={
                        "sns": sns,
                        "action": cmd.value,
                        "reason": form.cleaned_data.get("reason", ""),
                        "note": form.cleaned_data.get("note", ""),
                        "params": form.params(),
                        **actor_params(actor),
                    },
                )
                context["job"] = job
                return render_page(request, TEMPLATE, context, partial="running")
            if actor is not None:
                try:
                    results = terminals_bulk_transition(
                        actor=actor,
                        sns=sns,
                        action=cmd.value,
                        reason=form.cleaned_data.get("reason", ""),
                        note=form.cleaned_data.get("note", ""),
                        params=form.params(),
                    )
                except DomainError as exc:
                    form.add_error(None, str(exc.detail))
                else:
                    context["results"] = results
                    context["done"] = sum(1 for r in results if r.ok)
                    response = render_page(request, TEMPLATE, context, partial="result")
                    if is_htmx(request) and context["done"]:
                        response["HX-Trigger"] = "terminals-changed"
                    return response
    candidates = preview(user, cmd, sns)
    context["candidates"] = candidates
    context["applicable"] = sum(1 for c in candidates if c.applies)
    return render_page(request, TEMPLATE, context, partial="dialog")
