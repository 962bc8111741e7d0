"""Terminal models and terminals in /admin/ (superusers). The status is read-only here: only the
fleet services change it (use the console's device management or the API)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from posfleet.fleet.models import RelocationAlert, Terminal, TerminalModel


@admin.register(TerminalModel)
class TerminalModelAdmin(admin.ModelAdmin):
    list_display = ("code", "maker", "name", "kind")
    list_filter = ("kind", "maker")
    search_fields = ("code", "maker", "name")


@admin.register(Terminal)
class TerminalAdmin(admin.ModelAdmin):
    list_display = ("sn", "tid", "status", "model", "agent", "merchant", "service_expires_on")
    list_filter = ("status", "model")
    search_fields = ("sn", "tid")
    list_select_related = ("model", "agent", "merchant")
    show_full_result_count = False
    readonly_fields = (
        "sn",
        "status",
        "status_reason",
        "status_changed_at",
        "deactivated_at",
        "tid",
        "agent",
        "merchant",
        "store",
        "import_batch",
        "registered_at",
        "updated_at",
        "last_heartbeat_at",
        "last_location",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # terminals enter the fleet through `posfleet import terminals` (audited)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RelocationAlert)
class RelocationAlertAdmin(admin.ModelAdmin):
    """Read-only: the heartbeat service raises alerts and the review services move them (audited)."""

    list_display = ("terminal", "store", "distance_m", "status", "source", "detected_at", "reviewed_at")
    list_filter = ("status", "source")
    search_fields = ("terminal__sn", "terminal__tid")
    list_select_related = ("terminal", "store")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
