"""Terminal models and terminals in /admin/ (superusers). The status is read-only here: only the
fleet services change it (use the console's device management or the API)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from posfleet.fleet.models import Terminal, TerminalModel


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
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # terminals enter the fleet through `posfleet import terminals` (audited)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
