from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "posfleet.api"
    label = "api"
    verbose_name = "API"
