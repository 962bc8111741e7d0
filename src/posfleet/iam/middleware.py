"""A signed-in user sees the console in their own language (zh-hans by default for new users); a
session that owes its second factor is signed out."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from posfleet.iam.models import User
from posfleet.iam.stepup import second_factor_required


class UserLanguageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.known = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        language = getattr(user, "language", None) if user is not None and user.is_authenticated else None
        if language in self.known:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        response = self.get_response(request)
        if language in self.known:
            response.headers.setdefault("Content-Language", language)
        return response


class SecondFactorMiddleware:
    """A session counts only once its user gave the second factor they owe (docs/adr/0020).

    Runs after django-otp's ``OTPMiddleware``. The login marks a session verified when the code is
    right (``iam.web.sign_in``); a session of someone who must give a second factor and is not verified
    — made some other way, older than the rule, or of a merchant who has since turned the authenticator
    on, or whose authenticator was replaced elsewhere — is signed out before anything reads it: the
    console sends it to the login, the API answers 401, /admin/ is closed.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and isinstance(user, User)
            and not user.is_verified()  # type: ignore[attr-defined]  # installed by OTPMiddleware
            and second_factor_required(user)
        ):
            logout(request)
            request.user.is_verified = lambda: False  # type: ignore[union-attr]  # as OTPMiddleware's
        return self.get_response(request)
