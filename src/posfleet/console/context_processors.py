"""What every console page needs: demo flag, version, navigation, the current user's place."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import translation

import posfleet
from posfleet.console import navigation
from posfleet.iam.models import Role
from posfleet.notifications.selectors import unread_count


def console(request: HttpRequest) -> dict[str, Any]:
    current = translation.get_language() or settings.LANGUAGE_CODE
    languages = dict(settings.LANGUAGES)
    other = next((code for code in languages if code != current), settings.LANGUAGE_CODE)
    context: dict[str, Any] = {
        "demo_mode": settings.POSFLEET["DEMO_MODE"],
        "posfleet_version": posfleet.__version__,
        "switch_language": {"code": other, "name": languages.get(other, other)},
    }
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and getattr(user, "role", None) in Role.values:
        path = request.path
        context["nav_main"] = navigation.main_items(user, path)
        context["nav_account"] = navigation.account_items(user, path)
        context["user_role_label"] = Role(user.role).label
        context["inbox_unread"] = unread_count(user)
    return context
