from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    name = "posfleet.console"
    label = "console"
    verbose_name = _("Console")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from posfleet.console.selection import clear_on_sign_in

        user_logged_in.connect(clear_on_sign_in, dispatch_uid="console.selection.clear_on_sign_in")
