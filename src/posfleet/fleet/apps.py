from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FleetConfig(AppConfig):
    name = "posfleet.fleet"
    label = "fleet"
    verbose_name = _("Fleet")

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from posfleet.fleet import jobs  # noqa: F401  (registers the fleet's background jobs)
        from posfleet.fleet.models import Terminal, TerminalModel

        auditlog.register(TerminalModel)
        # Status changes are recorded by the audit chain; auditlog keeps diffs of the plain fields.
        auditlog.register(Terminal, exclude_fields=["status", "status_changed_at", "updated_at"])
