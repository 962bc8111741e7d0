from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EnrollmentConfig(AppConfig):
    name = "posfleet.enrollment"
    label = "enrollment"
    verbose_name = _("Enrollment and renewal")

    def ready(self) -> None:
        from posfleet.audit.vocabulary import EventType, register_reasons
        from posfleet.enrollment.services.replacement import ReplacementReason

        # A terminal's timeline shows why it was replaced in the replacement's own words.
        register_reasons(EventType.TERMINAL_REPLACED, ReplacementReason)
