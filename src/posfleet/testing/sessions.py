"""Signed-in test clients without typing a code: the session is made by the login's own last step.

Tests of the login itself go through its pages (iam/tests/test_login_second_factor.py); every other
test signs in with ``sign_in``, which calls ``iam.web.sign_in`` — what the login calls once the password
and the code are right — so the session holds exactly what a real one holds: the user and, when the user
has an authenticator, the mark that they gave it. A session made any other way (``force_login``) is
signed out on its next request when its user must give a second factor.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.test import Client

from posfleet.iam import web
from posfleet.iam.models import User
from posfleet.iam.stepup import confirmed_totp
from posfleet.platform.clock import now


def sign_in(client: Client, user: User, *, stepped_up: bool = False) -> Client:
    """``client`` signed in as ``user`` (verified with their authenticator, if they have one); with
    ``stepped_up``, as right after a login with the code (a fresh step-up, as the login gives)."""
    request = HttpRequest()
    request.session = client.session
    request.user = AnonymousUser()
    fresh = User.objects.get(pk=user.pk)  # django-otp notes the device on the object it signs in
    web.sign_in(request, fresh, device=confirmed_totp(fresh), stepped_up_at=now() if stepped_up else None)
    request.session.save()
    key = request.session.session_key
    assert key is not None
    client.cookies[settings.SESSION_COOKIE_NAME] = key
    client.cookies[settings.SESSION_COOKIE_NAME]["path"] = "/"
    return client
