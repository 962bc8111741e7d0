"""Agents, merchants and stores in /admin/ (superusers). Edits are recorded by django-auditlog; a
merchant's status is read-only here (its services change it, with an audit event)."""

from __future__ import annotations

from django.contrib import admin

from posfleet.parties.models import Agent, Merchant, Store


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
