from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "posfleet.platform"
    label = "platform"
    verbose_name = "Platform"
