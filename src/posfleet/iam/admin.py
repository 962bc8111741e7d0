"""Organisations, users and API tokens in /admin/ (superusers only). Token secrets are never stored.

Everything here decides who may do what, so every page that changes it (add, change, delete, a
password, bulk actions) needs a fresh step-up, as granting access does elsewhere (docs/adr/0020);
the same goes for the groups and the second-factor devices django registers, whose secrets are never
shown (OTP_ADMIN_HIDE_SENSITIVE_DATA). What an edit changes in a user's access is audited.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin as BaseStaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin as BaseTOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from posfleet.iam import services
from posfleet.iam.admin_site import step_up_redirect
from posfleet.iam.models import ApiToken, Organisation, User
from posfleet.iam.web import actor_from_request


class StepUpAdmin(admin.ModelAdmin):
    """Add, change and delete pages (and bulk actions) only within a fresh step-up."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return step_up_redirect(request) or super().changeform_view(
            request, object_id, form_url, extra_context
        )

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return step_up_redirect(request) or super().delete_view(request, object_id, extra_context)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        refusal = step_up_redirect(request) if request.method == "POST" else None
        return refusal or super().changelist_view(request, extra_context)


@admin.register(Organisation)
class OrganisationAdmin(StepUpAdmin):
    list_display = ("name", "kind", "parent", "path")
    list_filter = ("kind",)
    search_fields = ("name",)
    readonly_fields = ("path",)


@admin.register(User)
class UserAdmin(StepUpAdmin, BaseUserAdmin):
    list_display = ("username", "role", "organisation", "language", "is_active", "last_login")
    list_filter = ("role", "is_active", "is_superuser")
    fieldsets = (
        *BaseUserAdmin.fieldsets,  # type: ignore[misc]
        ("posfleet", {"fields": ("organisation", "role", "language")}),
    )

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        return step_up_redirect(request) or super().user_change_password(request, id, form_url)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        before = services.user_access(User.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        services.user_access_changed(actor=actor_from_request(request), user=obj, before=before)


@admin.register(ApiToken)
class ApiTokenAdmin(StepUpAdmin):
    list_display = (
        "name",
        "user",
        "prefix",
        "scope",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("scope",)
    readonly_fields = (
        "user",
        "name",
        "prefix",
        "scope",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    exclude = ("digest",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are created by their owner in the console, with step-up

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Registered by django.contrib.auth and django-otp before us; the same pages, behind a step-up.
for model, base in (
    (Group, BaseGroupAdmin),
    (TOTPDevice, BaseTOTPDeviceAdmin),
    (StaticDevice, BaseStaticDeviceAdmin),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, type(base.__name__, (StepUpAdmin, base), {"__module__": __name__}))
