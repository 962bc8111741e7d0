"""Forms of the identity pages (login, two-factor set-up, API tokens)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from posfleet.iam.models import ApiToken
from posfleet.platform.clock import today


class BootstrapMixin:
    """Gives every widget Bootstrap's classes; fields with errors get ``is-invalid``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():  # type: ignore[attr-defined]
            widget = field.widget
            if isinstance(widget, forms.CheckboxSelectMultiple | forms.CheckboxInput | forms.RadioSelect):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()

    def add_error(self, field: str | None, error: Any) -> None:
        super().add_error(field, error)  # type: ignore[misc]
        for name in self._errors or {}:  # type: ignore[attr-defined]
            target = self.fields.get(name)  # type: ignore[attr-defined]
            if target is not None and "is-invalid" not in target.widget.attrs.get("class", ""):
                target.widget.attrs["class"] = f"{target.widget.attrs.get('class', '')} is-invalid".strip()


def totp_field(required: bool = True) -> forms.CharField:
    """A six-digit TOTP code (or a backup code) for step-up verification."""
    return forms.CharField(
        label=_("Verification code"),
        help_text=_("The 6-digit code from your authenticator app, or one of your backup codes."),
        max_length=20,
        required=required,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "spellcheck": "false",
                "autocapitalize": "off",
                "class": "font-monospace totp-input",
            }
        ),
    )


class LoginForm(BootstrapMixin, forms.Form):
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        widget=forms.TextInput(
            attrs={"autocomplete": "username", "autofocus": True, "autocapitalize": "none"}
        ),
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class LoginCodeForm(BootstrapMixin, forms.Form):
    """The code step of a login: a TOTP code or a backup code."""

    code = totp_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].widget.attrs["autofocus"] = True


class TotpConfirmForm(BootstrapMixin, forms.Form):
    code = forms.CharField(
        label=_("First code from the app"),
        min_length=6,
        max_length=6,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9]{6}",
                "class": "font-monospace totp-input",
            }
        ),
    )


class WithTotpMixin:
    """Adds the ``totp`` field when the session's step-up is not fresh (``needs_code``)."""

    base_fields: dict[str, forms.Field]

    def __init__(self, *args: Any, needs_code: bool = True, **kwargs: Any) -> None:
        if needs_code:
            self.base_fields = {**type(self).base_fields, "totp": totp_field()}
        super().__init__(*args, **kwargs)


class StepUpForm(WithTotpMixin, BootstrapMixin, forms.Form):
    """Only a TOTP code: for actions on the security page that need a fresh verification."""


class TokenCreateForm(WithTotpMixin, BootstrapMixin, forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("What the token is for, e.g. “ERP sync”."),
    )
    scope = forms.ChoiceField(label=_("Scope"), choices=ApiToken.Scope.choices, initial=ApiToken.Scope.READ)
    expires_on = forms.DateField(
        label=_("Expires on"),
        required=False,
        help_text=_("Optional. The token stops working at the end of this day."),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def clean_expires_on(self) -> date | None:
        value = self.cleaned_data.get("expires_on")
        if value is not None and value < today():
            raise forms.ValidationError(_("The expiry must be today or later."))
        return value

    def expires_at(self) -> datetime | None:
        value = self.cleaned_data.get("expires_on")
        if value is None:
            return None
        return timezone.make_aware(datetime.combine(value, time(23, 59, 59)))
