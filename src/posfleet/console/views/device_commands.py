"""The terminal page's "Device commands" panel: the commands sent to a smart terminal's device, with
their status and times, and a small form to send lock, unlock, message (and wipe, with step-up).

The terminal page includes a placeholder that htmx fills from this view (GET); without JavaScript the
panel is a page of its own. POST sends one command through ``fleet.services.device_command_send`` and
shows the panel again.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from posfleet.console.views.base import console_login_required, is_htmx, render_page
from posfleet.console.views.money.common import forbidden, signed_in
from posfleet.fleet import selectors as fleet
from posfleet.fleet.rules import device_command_permission
from posfleet.fleet.services import device_command_send
from posfleet.fleet.services.devices import STEP_UP_KINDS
from posfleet.iam.forms import BootstrapMixin, WithTotpMixin
from posfleet.iam.web import actor_from_form, actor_from_request, step_up_remaining_seconds
from posfleet.platform.errors import DomainError, NotFound

TEMPLATE = "console/terminals/device_commands.html"
Kind = fleet.DeviceCommand.Kind

# What the console sends (update_params is for integrators: its payload is a JSON object).
CONSOLE_KINDS = (Kind.LOCK, Kind.UNLOCK, Kind.MESSAGE, Kind.WIPE)
SHOWN = 50  # the newest commands; the API pages through all of them


class DeviceCommandForm(WithTotpMixin, BootstrapMixin, forms.Form):
    """One command: its kind (those the user may send), a text (a message; optional for a lock) and,
    for wipe and lock while the session's step-up is not fresh, a TOTP code."""

    kind = forms.ChoiceField(label=gettext_lazy("Command"))
    text = forms.CharField(
        label=gettext_lazy("Text"),
        required=False,
        max_length=500,
        help_text=gettext_lazy("Shown on the device: required for a message, optional for a lock."),
    )

    def __init__(self, data: Any = None, *, kinds: list[Kind], needs_code: bool) -> None:
        super().__init__(data, needs_code=needs_code)
        if "totp" in self.fields:
            self.fields["totp"].required = False  # only wipe and lock ask for it (``clean``)
        self.fields["kind"].choices = [(k.value, k.label) for k in kinds]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind == Kind.MESSAGE and not (data.get("text") or "").strip():
            self.add_error("text", _("Write the message to show."))
        if kind in STEP_UP_KINDS and "totp" in self.fields and not data.get("totp"):
            self.add_error("totp", _("Enter the current code from your authenticator app."))
        return data

    def payload(self) -> dict[str, str]:
        kind, text = self.cleaned_data["kind"], (self.cleaned_data.get("text") or "").strip()
        return {"text": text} if kind in (Kind.MESSAGE, Kind.LOCK) and text else {}


@sensitive_post_parameters("totp")
@console_login_required
@never_cache
@require_http_methods(["GET", "POST"])
def terminal_commands(request: HttpRequest, sn: str) -> HttpResponse:
    user = signed_in(request)
    try:
        terminal, commands = fleet.device_commands_of(user, sn)
    except NotFound as exc:
        raise Http404 from exc  # others' terminals are simply not there
    who = actor_from_request(request)
    smart = terminal.model.kind == fleet.Kind.SMART
    kinds = [k for k in CONSOLE_KINDS if smart and who.may(device_command_permission(k), terminal)]
    remaining = step_up_remaining_seconds(request)
    form = DeviceCommandForm(
        request.POST if request.method == "POST" else None, kinds=kinds, needs_code=remaining == 0
    )
    context_sent = ""
    if request.method == "POST":
        if not kinds:
            return forbidden(request, _("You may not send commands to this device."))
        if form.is_valid():
            actor = actor_from_form(request, form)
            if actor is not None:
                try:
                    command = device_command_send(
                        actor=actor, sn=terminal.sn, kind=form.cleaned_data["kind"], payload=form.payload()
                    )
                except NotFound as exc:
                    raise Http404 from exc
                except DomainError as exc:
                    form.add_error(None, str(exc.detail))
                else:
                    sent = _("Command “%(kind)s” sent; the device gets it at its next poll.") % {
                        "kind": Kind(command.kind).label
                    }
                    if not is_htmx(request):
                        messages.success(request, sent)
                        return redirect("console:terminal", sn=terminal.sn)
                    context_sent = sent
                    remaining = step_up_remaining_seconds(request)
                    form = DeviceCommandForm(kinds=kinds, needs_code=remaining == 0)
    context = {
        "terminal": terminal,
        "commands": list(commands[:SHOWN]),
        "credential": fleet.device_credential_of(terminal),
        "smart": smart,
        "form": form,
        "kinds": kinds,
        "needs_code": remaining == 0,
        "step_up_minutes": (remaining + 59) // 60,
        "sent": context_sent,
    }
    return render_page(request, TEMPLATE, context, partial="panel")
