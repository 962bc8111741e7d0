"""Production: PostgreSQL from POSFLEET_DATABASE_URL, secrets from the environment, HTTPS only."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import SECRET_KEY, env, env_bool

DEBUG = False
if "insecure" in SECRET_KEY:
    raise ImproperlyConfigured("POSFLEET_SECRET_KEY must be set in production")
if not env("AUDIT_KEY"):
    raise ImproperlyConfigured("POSFLEET_AUDIT_KEY must be set in production")
if not env("MASTER_KEYS"):
    raise ImproperlyConfigured("POSFLEET_MASTER_KEYS must be set in production (id=base64 key, ...)")

SECURE_SSL_REDIRECT = env_bool("SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
