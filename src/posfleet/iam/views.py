"""The identity pages: login (password, then the code or a first set-up) and logout, language,
two-factor set-up, step-up, API tokens.

Views parse the request, call one iam service and render. Secrets (TOTP keys, backup codes, API token
secrets) only ever travel in response bodies that are not cached, never in URLs or logs.
"""

from __future__ import annotations

from base64 import b32encode
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from posfleet.iam import selectors, services
from posfleet.iam.forms import LoginCodeForm, LoginForm, StepUpForm, TokenCreateForm, TotpConfirmForm
from posfleet.iam.models import User
from posfleet.iam.stepup import confirmed_totp, has_totp, second_factor_required
from posfleet.iam.web import (
    actor_from_form,
    actor_from_request,
    mark_verified,
    pending_login,
    pending_login_end,
    pending_login_start,
    sign_in,
    step_up_remaining_seconds,
)
from posfleet.platform.compression import keep_uncompressed
from posfleet.platform.context import Actor
from posfleet.platform.errors import DomainError
from posfleet.platform.middleware import client_ip


def _login_refused_message() -> str:
    # One message for a wrong password, an unknown user and a locked account (no user enumeration).
    return _(
        "The username or password is wrong, or the account is locked for a while. Please try again later."
    )


def _safe_next(request: HttpRequest, fallback: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return fallback


def _set_language_cookie(response: HttpResponse, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


# ---------------------------------------------------------------------------------------------
# Login, logout, language


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest, fallback: str | None = None) -> HttpResponse:
    """The password step, for the console and /admin/ alike (``fallback``: where to go without a
    ``next``). Staff, and merchants who turned the authenticator on, go on to the code step (or a
    forced set-up); only whoever owes no second factor is signed in by it (docs/adr/0020)."""
    fallback = fallback or settings.LOGIN_REDIRECT_URL
    if not request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME):
        # The console is Chinese unless someone chose otherwise (browsers' Accept-Language aside).
        translation.activate(settings.LANGUAGE_CODE)
        request.LANGUAGE_CODE = settings.LANGUAGE_CODE
    next_url = _safe_next(request, fallback)
    if request.user.is_authenticated and request.method == "GET":
        return HttpResponseRedirect(next_url)
    form = LoginForm(request.POST or None)
    refused = False
    if request.method == "POST" and form.is_valid():
        try:
            user = services.login_check(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
                request_id=getattr(request, "request_id", ""),
                source_ip=client_ip(request),
                request=request,
            )
        except services.LoginRefused:
            refused = True
        else:
            if second_factor_required(user):
                pending_login_start(request, user, next_url)
                step = "iam:login_code" if has_totp(user) else "iam:login_enrol"
                return HttpResponseRedirect(reverse(step))
            pending_login_end(request)
            sign_in(request, user, device=None, stepped_up_at=None)
            return _signed_in(user, next_url)
    context = {
        "form": form,
        "refused": refused,
        "refused_message": _login_refused_message(),
        "next": next_url,
    }
    return render(request, "iam/login.html", context, status=200)


def _signed_in(user: User, next_url: str) -> HttpResponse:
    response = HttpResponseRedirect(next_url)
    _set_language_cookie(response, user.language)
    return response


def _no_pending_login() -> HttpResponse:
    return HttpResponseRedirect(reverse("iam:login"))


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_code_view(request: HttpRequest) -> HttpResponse:
    """The code step: a TOTP or backup code, checked as a step-up (replay rejection, lockout after
    10 wrong codes, audited), which it also is: the session starts with a fresh step-up."""
    pending = pending_login(request)
    if pending is None:
        return _no_pending_login()
    user = pending.user
    device = confirmed_totp(user)
    if device is None:
        return HttpResponseRedirect(reverse("iam:login_enrol"))
    form = LoginCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            at = services.login_second_factor(
                user=user,
                code=form.cleaned_data["code"],
                request_id=getattr(request, "request_id", ""),
                source_ip=client_ip(request),
            )
        except DomainError as exc:
            form.add_error("code", str(exc.detail))
        else:
            pending_login_end(request)
            sign_in(request, user, device=device, stepped_up_at=at)
            return _signed_in(user, pending.next_url)
    context = {"form": form, "username": user.get_username()}
    return _no_store(render(request, "iam/login_code.html", context))


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_enrol_view(request: HttpRequest) -> HttpResponse:
    """The forced set-up of a login: staff without an authenticator set one up before anything else.
    The key is shown only here, to whoever just gave the right password."""
    pending = pending_login(request)
    if pending is None:
        return _no_pending_login()
    user = pending.user
    if not second_factor_required(user):
        return _no_pending_login()
    if has_totp(user):
        return HttpResponseRedirect(reverse("iam:login_code"))
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = services.totp_start_enrolment(actor=Actor.for_user(user))
    form = TotpConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = services.login_enrolled(
                user=user,
                device=device,
                code=form.cleaned_data["code"],
                request_id=getattr(request, "request_id", ""),
                source_ip=client_ip(request),
            )
        except DomainError as exc:
            form.add_error("code", str(exc.detail))
        else:
            pending_login_end(request)
            device.refresh_from_db()
            sign_in(request, user, device=device, stepped_up_at=None)
            done = {"codes": codes, "reason": "enrolled", "continue_url": pending.next_url}
            response = _no_store(render(request, "iam/backup_codes.html", done))
            _set_language_cookie(response, user.language)
            return response
    key = b32encode(device.bin_key).decode()
    context = {
        "form": form,
        "username": user.get_username(),
        "qr_svg": _qr_svg(device.config_url),
        "manual_key": " ".join(key[i : i + 4] for i in range(0, len(key), 4)),
    }
    return _no_store(render(request, "iam/login_enrol.html", context))


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if isinstance(request.user, User):
        services.logout_record(actor=actor_from_request(request))
    auth_logout(request)
    return HttpResponseRedirect(settings.LOGOUT_REDIRECT_URL)


@require_POST
def language_view(request: HttpRequest) -> HttpResponse:
    """Switch the console's language; a signed-in user keeps the choice (``user.language``)."""
    language = request.POST.get("language", "")
    fallback = reverse("console:dashboard") if request.user.is_authenticated else settings.LOGIN_URL
    response = HttpResponseRedirect(_safe_next(request, fallback))
    if language not in dict(settings.LANGUAGES):
        return response
    user = request.user
    if isinstance(user, User):
        services.user_set_language(user=user, language=language)
    translation.activate(language)
    _set_language_cookie(response, language)
    return response


# ---------------------------------------------------------------------------------------------
# Step-up inside a form


def _needs_code(request: HttpRequest) -> bool:
    return step_up_remaining_seconds(request) == 0


def _no_store(response: HttpResponse) -> HttpResponse:
    """The answer of a page that may show a secret (a TOTP secret, backup codes, a new token): kept by
    no cache and sent uncompressed (docs/adr/0032)."""
    response["Cache-Control"] = "no-store"
    keep_uncompressed(response)
    return response


# ---------------------------------------------------------------------------------------------
# Security: two-factor authentication and backup codes


def _qr_svg(url: str) -> str:
    # segno writes plain SVG markup (no scripts, no external references).
    return mark_safe(segno.make(url, error="m").svg_inline(scale=5, border=2, dark="#0b1f3a"))  # noqa: S308


def _security_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    user = request.user
    assert isinstance(user, User)
    pending = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    needs_code = _needs_code(request)
    context: dict[str, Any] = {
        "enrolled": has_totp(user),
        "backup_codes_left": StaticToken.objects.filter(device__user=user, device__confirmed=True).count(),
        "pending": pending,
        "step_up_seconds": step_up_remaining_seconds(request),
        "start_form": StepUpForm(needs_code=needs_code and has_totp(user), auto_id="start_%s"),
        "backup_form": StepUpForm(needs_code=needs_code, auto_id="backup_%s"),
        "confirm_form": TotpConfirmForm(),
    }
    if pending is not None:
        context["qr_svg"] = _qr_svg(pending.config_url)
        key = b32encode(pending.bin_key).decode()
        context["manual_key"] = " ".join(key[i : i + 4] for i in range(0, len(key), 4))
    context.update(extra)
    return context


@login_required
@never_cache
def security_view(request: HttpRequest) -> HttpResponse:
    return _no_store(render(request, "iam/security.html", _security_context(request)))


@sensitive_post_parameters("totp")
@login_required
@require_POST
def totp_start_view(request: HttpRequest) -> HttpResponse:
    """Start (re-)enrolment. Replacing an enrolled authenticator needs a fresh step-up first."""
    user = request.user
    assert isinstance(user, User)
    enrolled = has_totp(user)
    form = StepUpForm(request.POST, needs_code=enrolled and _needs_code(request), auto_id="start_%s")
    actor = actor_from_form(request, form) if form.is_valid() else None
    if actor is not None:
        services.totp_start_enrolment(actor=actor)
        return HttpResponseRedirect(reverse("iam:security") + "#enrol")
    context = _security_context(request, start_form=form)
    return _no_store(render(request, "iam/security.html", context, status=200))


@sensitive_post_parameters("code")
@login_required
@require_POST
@never_cache
def totp_confirm_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    form = TotpConfirmForm(request.POST)
    pending = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if pending is None:
        messages.info(request, _("There is no set-up in progress. Start again."))
        return HttpResponseRedirect(reverse("iam:security"))
    if form.is_valid():
        try:
            codes = services.totp_confirm_enrolment(
                actor=actor_from_request(request), device=pending, code=form.cleaned_data["code"]
            )
        except DomainError as exc:
            form.add_error("code", str(exc.detail))
        else:
            # The authenticator this session was verified with (if any) is gone; the new one verifies
            # it. Other sessions of the user are signed out on their next request (SecondFactorMiddleware).
            pending.refresh_from_db()
            mark_verified(request, pending)
            context = {"codes": codes, "reason": "enrolled"}
            return _no_store(render(request, "iam/backup_codes.html", context))
    context = _security_context(request, confirm_form=form)
    return _no_store(render(request, "iam/security.html", context))


@sensitive_post_parameters("totp")
@login_required
@require_POST
@never_cache
def backup_codes_view(request: HttpRequest) -> HttpResponse:
    """Regenerate the backup codes (old ones stop working); needs a fresh step-up."""
    form = StepUpForm(request.POST, needs_code=_needs_code(request), auto_id="backup_%s")
    if form.is_valid():
        actor = actor_from_form(request, form)
        if actor is not None:
            try:
                codes = services.backup_codes_regenerate(actor=actor)
            except DomainError as exc:
                form.add_error(None, str(exc.detail))
            else:
                context = {"codes": codes, "reason": "regenerated"}
                return _no_store(render(request, "iam/backup_codes.html", context))
    context = _security_context(request, backup_form=form)
    return _no_store(render(request, "iam/security.html", context))


# ---------------------------------------------------------------------------------------------
# Step-up on its own page (for pages that cannot ask for the code themselves: /admin/)


def verify_redirect(request: HttpRequest) -> HttpResponse:
    """To the verification page, and back to this page afterwards."""
    return HttpResponseRedirect(f"{reverse('iam:verify')}?{urlencode({'next': request.get_full_path()})}")


@sensitive_post_parameters("totp")
@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def verify_view(request: HttpRequest) -> HttpResponse:
    """Verify identity (a fresh step-up), then go back to ``next``."""
    next_url = _safe_next(request, settings.LOGIN_REDIRECT_URL)
    form = StepUpForm(request.POST or None, needs_code=True)
    if request.method == "POST" and form.is_valid() and actor_from_form(request, form) is not None:
        return HttpResponseRedirect(next_url)
    context = {"form": form, "next": next_url}
    return _no_store(render(request, "iam/verify.html", context))


# ---------------------------------------------------------------------------------------------
# API tokens


def _tokens_page(request: HttpRequest, form: TokenCreateForm, **extra: Any) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    context = {
        "tokens": list(selectors.tokens_of(user)),
        "form": form,
        "step_up_seconds": step_up_remaining_seconds(request),
        **extra,
    }
    return _no_store(render(request, "iam/tokens.html", context))


@sensitive_post_parameters("totp")
@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def tokens_view(request: HttpRequest) -> HttpResponse:
    """List one's own API tokens; POST creates one (needs step-up) and shows its secret once."""
    if request.method == "GET":
        return _tokens_page(request, TokenCreateForm(needs_code=_needs_code(request)))
    form = TokenCreateForm(request.POST, needs_code=_needs_code(request))
    if form.is_valid():
        actor = actor_from_form(request, form)
        if actor is not None:
            try:
                token, secret = services.token_create(
                    actor=actor,
                    name=form.cleaned_data["name"],
                    scope=form.cleaned_data["scope"],
                    expires_at=form.expires_at(),
                )
            except DomainError as exc:
                form.add_error(None, str(exc.detail))
            else:
                fresh = TokenCreateForm(needs_code=_needs_code(request))
                return _tokens_page(request, fresh, new_token=token, new_secret=secret)
    return _tokens_page(request, form)


@login_required
@require_POST
def token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        token = services.token_revoke(actor=actor_from_request(request), token_id=pk)
    except DomainError as exc:
        messages.error(request, str(exc.detail))
    else:
        messages.success(request, _("Token “%(name)s” was revoked.") % {"name": token.name})
    return HttpResponseRedirect(reverse("iam:tokens"))
