from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "posfleet.demo"
    label = "demo"
    verbose_name = "Demo data"
