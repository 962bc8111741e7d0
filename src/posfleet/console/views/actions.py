"""The action dialog: preview which selected terminals a command applies to, then run it.

GET shows the dialog (loaded into the modal by htmx); POST verifies the step-up when the command
needs one, runs ``fleet.services.terminals_bulk_transition`` and shows the result per terminal.

The terminals are the ``sn`` parameters (a row, the terminal page) or, with ``scope=selection``, the
person's selection on the device list (ADR 0029: up to 10,000, every match of a filter included). The
dialog then carries a fingerprint of the SNs it showed, and a confirmation whose selection changed
meanwhile is refused (nothing done, the new preview shown) instead of acting on terminals never shown.
Many terminals run as a background job; the result says what was done and, grouped, why the others
were refused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from posfleet.console import selection
from posfleet.console.commands import Candidate, commands_for_role, parse_sns, preview
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
PREVIEW_ROWS = 200  # terminals listed one by one in the dialog; beyond, the counts by reason
RESULT_ROWS = 200  # results listed one by one; beyond, the refused ones first, and the counts by reason


def _preview_context(candidates: list[Candidate]) -> dict[str, Any]:
    skipped = Counter(str(c.why) for c in candidates if not c.applies)
    return {
        "candidates": candidates[:PREVIEW_ROWS],
        "candidates_hidden": max(0, len(candidates) - PREVIEW_ROWS),
        "applicable": sum(1 for c in candidates if c.applies),
        "skip_reasons": skipped.most_common(),
    }


def result_context(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The dialog's result: counts, the refusals grouped by reason (code and words) and the rows shown
    (all of them up to ``RESULT_ROWS``, else the refused ones first)."""
    rows = list(results)
    refused = [r for r in rows if not r.get("ok")]
    reasons = Counter((str(r.get("detail") or ""), str(r.get("code") or "")) for r in refused)
    shown = rows if len(rows) <= RESULT_ROWS else (refused + [r for r in rows if r.get("ok")])[:RESULT_ROWS]
    return {
        "results": shown,
        "total": len(rows),
        "done": len(rows) - len(refused),
        "refused_count": len(refused),
        "refusal_reasons": [
            {"detail": detail, "code": code, "count": n} for (detail, code), n in reasons.most_common()
        ],
        "results_hidden": len(rows) - len(shown),
    }


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
    from_selection = data.get("scope") == "selection"
    sns = selection.selected_sns(user) if from_selection else parse_sns(data.getlist("sn"))
    fingerprint = selection.digest(sns)
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
        "sns": sns if not from_selection else [],
        "count": len(sns),
        "from_selection": from_selection,
        "digest": fingerprint,
        "step_up": step_up,
        "needs_code": needs_code,
        "step_up_minutes": (remaining + 59) // 60,
    }
    if request.method == "POST":
        if not sns:
            form.add_error(None, _("Select at least one terminal."))
        elif from_selection and data.get("digest") != fingerprint:
            # Checked before the code: a code is not spent on terminals the person has not seen.
            form.add_error(
                None,
                _(
                    "The selection changed since this dialog opened (in another window?). Nothing was "
                    "done: check the terminals below and confirm again."
                ),
            )
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
                    context.update(result_context(asdict(r) for r in results))
                    response = render_page(request, TEMPLATE, context, partial="result")
                    if is_htmx(request) and context["done"]:
                        response["HX-Trigger"] = "terminals-changed"
                    return response
    context.update(_preview_context(preview(user, cmd, sns)))
    return render_page(request, TEMPLATE, context, partial="dialog")
