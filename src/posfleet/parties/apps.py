from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PartiesConfig(AppConfig):
    name = "posfleet.parties"
    label = "parties"
    verbose_name = _("Agents and merchants")

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from posfleet.parties import events  # noqa: F401  (registers the event types endpoints may subscribe to)
        from posfleet.parties.models import Agent, Merchant, Store

        # Field diffs of plain edits (django-auditlog); personal data is masked in the diffs.
        auditlog.register(Agent, mask_fields=["contact_name", "contact_phone"])
        auditlog.register(Merchant, mask_fields=["contact_name", "contact_phone", "contact_email"])
        auditlog.register(Store)
