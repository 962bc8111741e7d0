from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClosureConfig(AppConfig):
    name = "posfleet.closure"
    label = "closure"
    verbose_name = _("Closure (deregistration)")

    def ready(self) -> None:
        from posfleet.closure import (
            backup_tasks,  # noqa: F401  (the data backup job kind; fold into tasks)
            tasks,  # noqa: F401  (registers the runner with platform.wake)
        )
