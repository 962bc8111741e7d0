from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    name = "posfleet.console"
    label = "console"
    verbose_name = _("Console")
