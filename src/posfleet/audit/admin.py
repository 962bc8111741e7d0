"""The audit chain in /admin/: readable by superusers, never editable (it is append-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from posfleet.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = (
        "seq",
        "occurred_at",
        "event_type",
        "subject_type",
        "subject_id",
        "actor_label",
        "outcome",
    )
    list_filter = ("event_type", "subject_type", "actor_kind", "outcome")
    search_fields = ("subject_id", "actor_label", "request_id")
    ordering = ("-seq",)
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
