"""The /admin/ site: django-otp's ``OTPAdminSite`` (only sessions verified with a second factor get in)
whose login and logout are the console's, so that there is one throttled, audited login with its
second factor, and one audited logout (docs/adr/0020). Its own password change asks for the old password
through the same throttled check and needs a fresh step-up, like every edit of an identity."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminPasswordChangeForm
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.translation import gettext as _
from django_otp.admin import OTPAdminSite

from posfleet.iam import services, views
from posfleet.iam.models import User
from posfleet.iam.web import step_up_remaining_seconds
from posfleet.platform.middleware import client_ip


def step_up_redirect(request: HttpRequest) -> HttpResponse | None:
    """None while the session's step-up is fresh; else the way to the verification page, which comes
    back here. Nothing of the request is carried out."""
    if step_up_remaining_seconds(request) > 0:
        return None
    return views.verify_redirect(request)


class PosfleetAdminSite(OTPAdminSite):
    site_header = "posfleet"
    site_title = "posfleet admin"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.user.is_authenticated:
            if self.has_permission(request):
                return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
            raise PermissionDenied  # signed in, but not for /admin/ (sending them to log in would loop)
        return views.login_view(request, fallback=reverse("admin:index", current_app=self.name))

    def logout(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return views.logout_view(request)

    def password_change(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponseBase:
        refusal = step_up_redirect(request)
        if refusal is not None:
            return refusal
        form_class = type("RecheckedPasswordChangeForm", (RecheckedPasswordChangeForm,), {"request": request})
        defaults: dict[str, Any] = {
            "form_class": form_class,
            "success_url": reverse("admin:password_change_done", current_app=self.name),
            "extra_context": {**self.each_context(request), **(extra_context or {})},
        }
        if self.password_change_template is not None:
            defaults["template_name"] = self.password_change_template
        request.current_app = self.name
        return PasswordChangeView.as_view(**defaults)(request)


class RecheckedPasswordChangeForm(AdminPasswordChangeForm):
    """The old password goes through ``services.password_recheck``: counted, locked and audited as a
    login is, with the same one message."""

    request: HttpRequest

    def clean_old_password(self) -> str:
        old_password: str = self.cleaned_data["old_password"]
        user = self.user
        assert isinstance(user, User)
        try:
            services.password_recheck(
                user=user,
                password=old_password,
                request_id=getattr(self.request, "request_id", ""),
                source_ip=client_ip(self.request),
            )
        except services.LoginRefused:
            raise forms.ValidationError(
                _("The password is wrong, or the account is locked for a while. Please try again later."),
                code="password_incorrect",
            ) from None
        return old_password
