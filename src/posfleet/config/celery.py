"""The Celery app of the scale tier (docs/adr/0014-celery-scale-tier.md).

With ``POSFLEET_TASKS=celery`` the ``django.tasks`` backend is django-tasks-celery's, and every ``@task``
of posfleet registers itself with this app when its module is imported. A worker started with

    DJANGO_SETTINGS_MODULE=posfleet.config.settings.prod POSFLEET_TASKS=celery \\
        celery -A posfleet.config.celery worker

(or simply ``posfleet worker`` with the same settings) imports the ``tasks`` module of every posfleet
app and runs the very functions the database backend runs. Configuration comes from the Django
settings named ``CELERY_*`` (settings/base.py), never from here.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posfleet.config.settings.dev")

app = Celery("posfleet")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _posfleet_apps() -> list[str]:
    from django.apps import apps

    return [config.name for config in apps.get_app_configs() if config.name.startswith("posfleet.")]


# Imported when the worker starts (after django.setup()): posfleet.platform.tasks, notifications.tasks …
app.autodiscover_tasks(_posfleet_apps)
