from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operating the system: the process supervisor (`posfleet run`), `serve`, `audit`, `createuser`."""

    name = "posfleet.ops"
    label = "ops"
    verbose_name = "Operations"
