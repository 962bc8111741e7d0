"""The console's forms: the terminal list's filters and the action dialog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from posfleet.enrollment.services.replacement import ReplacementReason
from posfleet.fleet import selectors as fleet
from posfleet.fleet.services import PARAMETERS
from posfleet.fleet.states import SPECS, Command, Status, offered_reasons
from posfleet.iam.forms import BootstrapMixin, WithTotpMixin
from posfleet.iam.models import Role, User
from posfleet.parties import selectors as parties
from posfleet.platform.dates import check_range
from posfleet.platform.errors import ValidationFailed

PAGE_SIZE = 50
DORMANT_DAYS = 30  # the dormant filter's window unless the user chooses another
DORMANT_MAX_DAYS = 3650


def offers_party_filters(user: User) -> bool:
    """Whether the device list filters by agent and merchant for ``user`` (a merchant sees only its own
    terminals: those filters mean nothing there). The terminal page links to those lists by the same rule."""
    return user.role != Role.MERCHANT


@dataclass(frozen=True)
class DeviceListFilters:
    """What the device list searches by: the fleet's filters, the dormant window and the selection."""

    fleet: fleet.TerminalFilters
    dormant_days: int | None = None  # no approved sale in this many days (billing.selectors.dormant)
    selected_only: bool = False  # only the terminals in the person's selection


def inverted_range(start: Any, end: Any, *, field: str) -> str:
    """The one rule for a from/to filter (platform.dates.check_range) in a console form: "" when the
    range is in order or open, else why it is refused. A page with such a range shows the message
    (console/includes/range_error.html) and no results."""
    try:
        check_range(start, end, field=field)
    except ValidationFailed as exc:
        return str(exc.detail)
    return ""


def _choice_field(form: forms.Form, name: str) -> forms.ChoiceField:
    return cast(forms.ChoiceField, form.fields[name])


SORT_CHOICES = [(key, key) for key in sorted(fleet.SORTABLE)] + [
    (f"-{key}", f"-{key}") for key in sorted(fleet.SORTABLE)
]


class TerminalFilterForm(BootstrapMixin, forms.Form):
    """Every field is optional; an invalid value is ignored rather than failing the whole search. A SIM
    expiry range that ends before it starts is refused: ``range_error`` says so, nothing is found."""

    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=32,
        widget=forms.TextInput(
            attrs={
                "placeholder": _("Part of an SN or TID"),
                "type": "search",
                "autocomplete": "off",
                "spellcheck": "false",
            }
        ),
    )
    status = forms.MultipleChoiceField(
        label=_("Status"), required=False, choices=Status.choices, widget=forms.CheckboxSelectMultiple
    )
    model = forms.ChoiceField(label=_("Model"), required=False)
    agent = forms.ChoiceField(label=_("Agent"), required=False)
    merchant = forms.CharField(
        label=_("Merchant MID"),
        required=False,
        max_length=15,
        widget=forms.TextInput(attrs={"placeholder": _("MID"), "autocomplete": "off"}),
    )
    store = forms.CharField(
        label=_("Store code"),
        required=False,
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    dormant = forms.BooleanField(label=_("Dormant"), required=False)
    dormant_days = forms.IntegerField(
        label=_("Days without an approved sale"),
        required=False,
        min_value=1,
        max_value=DORMANT_MAX_DAYS,
        widget=forms.NumberInput(attrs={"placeholder": str(DORMANT_DAYS), "inputmode": "numeric"}),
    )
    selected = forms.BooleanField(label=_("Only the selection"), required=False)
    sim_from = forms.DateField(
        label=_("SIM expiry from"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "aria-label": _("SIM expiry from")}),
    )
    sim_to = forms.DateField(
        label=_("SIM expiry to"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "aria-label": _("SIM expiry to")}),
    )
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, widget=forms.HiddenInput)
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, data: QueryDict, *, user: User) -> None:
        super().__init__(data)
        self.user = user
        models = [(m.code, f"{m.maker} {m.name}") for m in fleet.terminal_models()]
        _choice_field(self, "model").choices = [("", _("All models")), *models]
        if not offers_party_filters(user):
            del self.fields["agent"]
            del self.fields["merchant"]
        else:
            agents = [(a.code, f"{a.code} · {a.name}") for a in parties.agents_visible_to(user)]
            _choice_field(self, "agent").choices = [("", _("All agents")), *agents]

    range_error = ""
    dormant_error = ""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.range_error = inverted_range(data.get("sim_from"), data.get("sim_to"), field="sim_from")
        if data.get("dormant") and "dormant_days" in self.errors:
            self.dormant_error = str(
                _("Give the days without an approved sale as a whole number from 1 to %(max)s.")
                % {"max": f"{DORMANT_MAX_DAYS:,}"}
            )
        return data

    @property
    def filter_error(self) -> str:
        """Why the search finds nothing on purpose (a backwards range, a bad dormant window), or ""."""
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        return self.range_error or self.dormant_error

    def value(self, name: str) -> Any:
        """The cleaned value of a field, or its empty value when it was missing or invalid."""
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        return self.cleaned_data.get(name) or (() if name == "status" else None)

    def filters(self) -> fleet.TerminalFilters:
        return fleet.TerminalFilters(
            statuses=tuple(self.value("status")),
            model=self.value("model") or "",
            agent=self.value("agent") or "",
            merchant=(self.value("merchant") or "").strip().upper(),
            store=(self.value("store") or "").strip(),
            sim_expires_from=self.value("sim_from"),
            sim_expires_to=self.value("sim_to"),
            q=self.value("q") or "",
        )

    def dormant_window(self) -> int | None:
        """The dormant filter's days (``DORMANT_DAYS`` unless chosen), or None when it is off."""
        if not self.value("dormant"):
            return None
        return self.value("dormant_days") or DORMANT_DAYS

    def list_filters(self) -> DeviceListFilters:
        return DeviceListFilters(
            fleet=self.filters(),
            dormant_days=self.dormant_window(),
            selected_only=bool(self.value("selected")),
        )

    def sort_key(self) -> str:
        return self.value("sort") or "sn"

    def page_number(self) -> int:
        return self.value("page") or 1

    def active_count(self) -> int:
        names = (
            "status",
            "model",
            "agent",
            "merchant",
            "store",
            "sim_from",
            "sim_to",
            "q",
            "dormant",
            "selected",
        )
        return sum(1 for name in names if name in self.fields and self.value(name))

    CANONICAL = (
        "q",
        "status",
        "model",
        "agent",
        "merchant",
        "store",
        "dormant",
        "dormant_days",
        "selected",
        "sim_from",
        "sim_to",
        "sort",
        "page",
    )

    def canonical(self) -> QueryDict:
        """The valid, non-empty parameters: what the address bar shows and links build upon."""
        query = QueryDict(mutable=True)
        for name in self.CANONICAL:
            if name not in self.fields:
                continue
            value = self.value(name)
            if name == "sort" and value == "sn":
                continue
            if name == "page" and value == 1:
                continue
            if name == "dormant_days" and (not self.value("dormant") or value == DORMANT_DAYS):
                continue
            if value is True:
                query[name] = "1"
                continue
            if isinstance(value, list | tuple):
                if value:
                    query.setlist(name, [str(v) for v in value])
            elif value:
                query[name] = value.isoformat() if hasattr(value, "isoformat") else str(value)
        return query


class ActionForm(WithTotpMixin, BootstrapMixin, forms.Form):
    """Reason, note and the command's own parameters; ``totp`` when the step-up is not fresh."""

    reason = forms.ChoiceField(label=_("Reason"))
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    agent_code = forms.ChoiceField(label=_("Agent"))
    merchant_mid = forms.CharField(
        label=_("Merchant MID"),
        max_length=15,
        widget=forms.TextInput(attrs={"autocomplete": "off", "class": "font-monospace"}),
    )
    store_code = forms.CharField(label=_("Store code"), required=False, max_length=16)
    tid = forms.CharField(
        label=_("Terminal ID (TID)"),
        required=False,
        max_length=8,
        help_text=_("Leave empty to assign the next free TID."),
        widget=forms.TextInput(attrs={"class": "font-monospace"}),
    )
    carrier = forms.CharField(label=_("Carrier"), required=False, max_length=64)
    tracking_no = forms.CharField(label=_("Tracking no."), required=False, max_length=64)

    def __init__(
        self,
        data: QueryDict | None = None,
        *,
        command: Command,
        user: User,
        single: bool,
        needs_code: bool,
    ) -> None:
        super().__init__(data, needs_code=needs_code)
        self.command = command
        spec = SPECS[command]
        wanted = set(PARAMETERS.get(command, ())) | {"note", "totp"}
        if spec.reasons is not None:
            wanted.add("reason")
            _choice_field(self, "reason").choices = [("", _("Choose a reason…")), *offered_reasons(command)]
        if command == Command.BIND and not single:
            wanted.discard("tid")  # one TID cannot go to many terminals: each gets the next free one
        for name in list(self.fields):
            if name not in wanted:
                del self.fields[name]
        if "agent_code" in self.fields:
            agents = [(a.code, f"{a.code} · {a.name}") for a in parties.agents_visible_to(user)]
            _choice_field(self, "agent_code").choices = [("", _("Choose an agent…")), *agents]

    def clean_merchant_mid(self) -> str:
        return self.cleaned_data["merchant_mid"].strip().upper()

    def clean_tid(self) -> str:
        return self.cleaned_data["tid"].strip().upper()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("reason") == "other" and not (data.get("note") or "").strip():
            self.add_error("note", _("Say in the note what the other reason is."))
        return data

    def params(self) -> dict[str, str]:
        return {
            name: self.cleaned_data.get(name, "") or ""
            for name in PARAMETERS.get(self.command, ())
            if name in self.fields
        }


class ReplaceForm(WithTotpMixin, BootstrapMixin, forms.Form):
    """Replacement (换机) of one terminal: the new SN from its agent's stock, reason, note, step-up."""

    new_sn = forms.ChoiceField(label=_("New terminal (SN)"))
    reason = forms.ChoiceField(
        label=_("Reason"), choices=[("", _("Choose a reason…")), *ReplacementReason.choices]
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(
        self, data: QueryDict | None = None, *, stock: list[tuple[str, str]], needs_code: bool
    ) -> None:
        super().__init__(data, needs_code=needs_code)
        _choice_field(self, "new_sn").choices = [("", _("Choose from the agent's stock…")), *stock]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("reason") == ReplacementReason.OTHER and not (data.get("note") or "").strip():
            self.add_error("note", _("Say in the note what the other reason is."))
        return data


class PasteForm(BootstrapMixin, forms.Form):
    """A pasted list of SNs to select: one per line, or separated by commas or spaces."""

    sns = forms.CharField(
        label=_("Serial numbers (SN)"),
        max_length=400_000,
        widget=forms.Textarea(
            attrs={
                "rows": 5,
                "class": "font-monospace",
                "spellcheck": "false",
                "autocomplete": "off",
                "placeholder": _("One SN per line, or separated by commas or spaces"),
            }
        ),
    )
