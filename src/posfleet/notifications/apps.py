from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "posfleet.notifications"
    label = "notifications"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        import posfleet.enrollment.events
        import posfleet.fleet.events
        import posfleet.notifications.tasks  # noqa: F401 (registers how deliveries are enqueued)
        from posfleet.notifications.services import fan_out
        from posfleet.platform.outbox import register_handler

        register_handler("notifications", fan_out)
