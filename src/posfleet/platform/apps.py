from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "posfleet.platform"
    label = "platform"
    verbose_name = "Platform"

    def ready(self) -> None:
        import posfleet.platform.tasks  # noqa: F401 (registers how its work is enqueued: platform/wake.py)
