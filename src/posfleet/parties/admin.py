"""Agents, merchants and stores in /admin/ (superusers). Edits are recorded by django-auditlog; a
merchant's status is read-only here (its services change it, with an audit event), and payment-channel
bindings are only shown (``channel_bind`` and ``channel_unbind`` write them, talking to the channel)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from posfleet.parties.models import Agent, ChannelBinding, Merchant, Store


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "organisation")
    search_fields = ("code", "name")
    readonly_fields = ("organisation",)


class StoreInline(admin.TabularInline):
    model = Store
    extra = 0


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ("mid", "name", "kind", "mcc", "agent", "status")
    list_filter = ("kind", "status")
    search_fields = ("mid", "name", "legal_name")
    # The status changes only through parties.services (merchant_suspend/resume/close: audited).
    readonly_fields = ("organisation", "mid", "agent", "status")
    inlines = [StoreInline]


@admin.register(ChannelBinding)
class ChannelBindingAdmin(admin.ModelAdmin):
    list_display = (
        "terminal",
        "merchant",
        "channel",
        "channel_merchant_id",
        "status",
        "last_outcome",
        "attempts",
    )
    list_filter = ("channel", "status", "last_outcome")
    search_fields = ("channel_merchant_id", "merchant__mid", "terminal__sn")
    list_select_related = ("terminal", "merchant")

    # Read-only: a binding changes only through parties.services, which asks the channel and audits.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
