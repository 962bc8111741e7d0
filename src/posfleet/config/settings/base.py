"""Settings shared by every tier. Tier modules (dev, test, prod) override what differs.

Everything a deployment changes comes from the environment (``POSFLEET_*``), never from code.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta
from pathlib import Path
from typing import TypedDict
from urllib.parse import parse_qsl, unquote, urlsplit

from whitenoise.compress import Compressor

PACKAGE_DIR = Path(__file__).resolve().parents[2]  # src/posfleet
BASE_DIR = Path(os.environ.get("POSFLEET_HOME", Path.cwd())).resolve()
VAR_DIR = Path(os.environ.get("POSFLEET_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str = "") -> str:
    return os.environ.get(f"POSFLEET_{name}", default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(f"POSFLEET_{name}")
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def database_from_url(url: str) -> dict[str, object]:
    """Turn ``sqlite:///path`` or ``postgresql://user:pw@host:port/name`` into a DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if path.startswith("//") or path.startswith("/"):  # sqlite:////abs/path
            path = path[1:]
        return sqlite_database(Path(path) if path else VAR_DIR / "posfleet.sqlite3")
    if parts.scheme in {"postgres", "postgresql"}:
        options: dict[str, object] = dict(parse_qsl(parts.query))
        # Parameters bound by the server, not pasted into the SQL text: psycopg then prepares a
        # statement run often on a connection (its 5th time) and PostgreSQL stops parsing and
        # planning it again — the gateway's groups run the same ~20 statements all day (ADR 0041).
        # ``?server_side_binding=false`` in the URL turns it off (a pooler in transaction mode cannot
        # keep prepared statements: ``?prepare_threshold=none`` then; Django's default is none).
        options["server_side_binding"] = str(options.get("server_side_binding", "true")).lower() != "false"
        threshold = str(options.get("prepare_threshold", "5")).lower()
        options["prepare_threshold"] = int(threshold) if threshold not in {"", "none"} else None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "postgres",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    raise ValueError(f"unsupported database URL scheme: {parts.scheme!r}")


def sqlite_database(path: Path) -> dict[str, object]:
    # IMMEDIATE + WAL + busy_timeout: concurrent read-then-write transactions wait instead of
    # failing with "database is locked" (ARCHITECTURE.md, measured 40-90 % failures without).
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        # Keep a thread's connection between requests: opening one (the file, the pragmas, the schema)
        # cost 1.5-2 ms of CPU on every request (bench/api_reads.py).
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                "PRAGMA busy_timeout=20000; PRAGMA foreign_keys=ON;"
            ),
        },
    }


SECRET_KEY = env("SECRET_KEY", "posfleet-insecure-development-key-change-me-in-production")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = [h for h in env("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]

INSTALLED_APPS = [
    "posfleet.iam.admin_apps.PosfleetAdminConfig",  # django.contrib.admin, our site (iam/admin_site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rules.apps.AutodiscoverRulesConfig",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_htmx",
    "ninja",  # serves the Swagger UI assets locally: /api/v1/docs works offline
    "auditlog",
    "django_tasks_db",
    "crontask",
    "posfleet.platform",
    "posfleet.audit",
    "posfleet.iam",
    "posfleet.parties",
    "posfleet.fleet",
    "posfleet.billing",
    "posfleet.enrollment",
    "posfleet.closure",
    "posfleet.gateway",
    "posfleet.notifications",
    "posfleet.reports",
    "posfleet.api",
    "posfleet.console",
    "posfleet.demo",
    "posfleet.ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "posfleet.platform.compression.CompressionMiddleware",  # brotli or gzip (docs/adr/0032)
    "posfleet.platform.middleware.RequestContextMiddleware",
    "posfleet.platform.middleware.NoStoreMiddleware",
    "posfleet.platform.middleware.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "posfleet.iam.middleware.SecondFactorMiddleware",
    "posfleet.iam.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
]

ROOT_URLCONF = "posfleet.config.urls"
WSGI_APPLICATION = "posfleet.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "posfleet.console.context_processors.console",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'posfleet.sqlite3'}"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "iam.User"
AUTHENTICATION_BACKENDS = [
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/console/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Sessions: staff sessions die after 15 idle minutes (QUALITY.md "sessions").
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = 15 * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads it from the cookie for its X-CSRFToken header

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
# One date and one moment format per language (config/formats/<locale>/formats.py).
FORMAT_MODULE_PATH = ["posfleet.config.formats"]
USE_I18N = True
TIME_ZONE = "Asia/Shanghai"
USE_TZ = True

# Static files (docs/adr/0032): `posfleet collectstatic --no-input` before start writes them to
# STATIC_ROOT with the content's hash in each name (`{% static %}` and CSS url() point there) and a
# brotli and a gzip copy beside each; WhiteNoise serves the hashed names with
# `Cache-Control: max-age=315360000, public, immutable`. Tiers without that step (dev, test) override
# STORAGES and serve from the apps' folders.
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Source maps are fetched only by a developer's browser tools: not worth compressing ahead of time.
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = (*Compressor.SKIP_COMPRESS_EXTENSIONS, "map")
MEDIA_ROOT = VAR_DIR / "media"

# A transaction batch of 10,000 items with external ids is about 3 MB of JSON (the default 2.5 MB
# refuses it); a larger body is answered 413 (problem+json under /api/v1/). Uploaded files are
# streamed to disk and do not count.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024

# Content Security Policy: nothing is loaded from outside the site (no CDNs at run time).
from django.utils.csp import CSP  # noqa: E402

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# django-otp: we run our own lockout (10 failures, 30 minutes) instead of exponential delays,
# so the library's counters are kept but its delay is off (docs/adr/0005-step-up.md).
OTP_TOTP_ISSUER = "posfleet"
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # /admin/ never shows TOTP keys or backup codes

NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_PER_PAGE_SIZE = 500

AUDITLOG_INCLUDE_ALL_MODELS = False
AUDITLOG_DISABLE_REMOTE_ADDR = False


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "posfleet.platform.logging.RedactFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        # The scheduler's and the worker's per-run lines (every few seconds) only when they go wrong.
        "apscheduler.executors": {"level": "WARNING"},
        "django.tasks": {"level": "WARNING"},
        "django_tasks_db": {"level": "WARNING"},
    },
}

# ---------------------------------------------------------------------------------------------
# posfleet's own policy knobs (DOMAIN.md defaults).


class PosfleetPolicy(TypedDict):
    STEP_UP_WINDOW: timedelta
    STEP_UP_MAX_FAILURES: int
    LOGIN_MAX_FAILURES: int
    LOCKOUT_DURATION: timedelta
    REACTIVATION_WINDOW: timedelta
    BULK_MAX_ITEMS: int
    BULK_SYNC_MAX: int
    IDEMPOTENCY_LEASE: timedelta
    IDEMPOTENCY_RETENTION: timedelta
    DEMO_MODE: bool


POSFLEET: PosfleetPolicy = {
    "STEP_UP_WINDOW": timedelta(minutes=int(env("STEP_UP_WINDOW_MINUTES", "5"))),
    "STEP_UP_MAX_FAILURES": 10,
    "LOGIN_MAX_FAILURES": 10,
    "LOCKOUT_DURATION": timedelta(minutes=30),
    "REACTIVATION_WINDOW": timedelta(days=int(env("REACTIVATION_WINDOW_DAYS", "90"))),
    "BULK_MAX_ITEMS": 1000,
    # A console bulk action on more terminals than this runs as a background job with a progress bar.
    "BULK_SYNC_MAX": int(env("BULK_SYNC_MAX", "50")),
    "IDEMPOTENCY_LEASE": timedelta(minutes=5),
    "IDEMPOTENCY_RETENTION": timedelta(days=1),
    "DEMO_MODE": env_bool("DEMO_MODE", False),
}
# Key of the audit hash chain (HMAC-SHA256). Production sets its own and keeps it out of the database.
POSFLEET_AUDIT_KEY = env("AUDIT_KEY", "posfleet-development-audit-chain-key")
# Database triggers that refuse UPDATE/DELETE on the audit table (audit/migrations/0002).
POSFLEET_AUDIT_DB_GUARD = True

# ---------------------------------------------------------------------------------------------
# Background work (ADR 0012): django.tasks on the database backend (`posfleet worker`), sweeps enqueued by
# `posfleet scheduler` (config/schedule.py). The scale tier swaps the backend in settings only (ADR 0014):
# POSFLEET_TASKS=celery runs the same tasks on Celery workers over POSFLEET_BROKER_URL (Redis, or RabbitMQ
# with an amqp:// URL) and the scheduler holds its one-instance lock in Redis.
TASKS_TIER = env("TASKS", "db")
TASKS: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}
}
if TASKS_TIER == "celery":
    TASKS = {
        "default": {
            "BACKEND": "django_tasks_celery.CeleryBackend",
            "QUEUES": ["default"],
            "OPTIONS": {"CELERY_APP": "posfleet.config.celery.app"},
        }
    }
    CELERY_BROKER_URL = env("BROKER_URL", "redis://127.0.0.1:6379/0")
    _redis_broker = CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    # Results (the tasks' return values, `Task.get_result`) live a day in Redis.
    CELERY_RESULT_BACKEND = env("RESULT_BACKEND", CELERY_BROKER_URL if _redis_broker else "") or None
    CELERY_RESULT_EXTENDED = True
    CELERY_RESULT_EXPIRES = timedelta(days=1)
    # Every task is an idempotent sweep: acknowledged when done, so a worker that dies mid-task leaves it
    # to another; one task at a time per process, so a long settlement does not hold short ones back.
    CELERY_TASK_ACKS_LATE = True
    CELERY_TASK_REJECT_ON_WORKER_LOST = True
    CELERY_WORKER_PREFETCH_MULTIPLIER = 1
    # Enqueueing happens after commit (robust): a broker that is down costs a second, not the request;
    # the scheduler's minute sweep picks up what was not enqueued.
    CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
    CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
    CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # LOGGING below (with its redaction filter) applies
    # django-crontask's leader lock: one `posfleet scheduler` per deployment across all nodes.
    CRONTASK = {"REDIS_URL": env("SCHEDULER_LOCK_URL", CELERY_BROKER_URL if _redis_broker else "") or None}
elif TASKS_TIER != "db":
    raise ValueError(f"POSFLEET_TASKS must be 'db' or 'celery', not {TASKS_TIER!r}")

# E-mail over SMTP (notifications), Django 6.1's MAILERS. The password comes from the environment.
MAILERS = {
    "default": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": env("SMTP_HOST", "127.0.0.1"),
            "port": int(env("SMTP_PORT", "25")),
            "username": env("SMTP_USER"),
            "password": env("SMTP_PASSWORD"),
            "use_tls": env_bool("SMTP_STARTTLS", False),
            "use_ssl": env_bool("SMTP_SSL", False),
            "timeout": 10,
        },
    }
}
DEFAULT_FROM_EMAIL = env("MAIL_FROM", "posfleet <noreply@posfleet.invalid>")


class NotifyPolicy(TypedDict):
    MAX_ATTEMPTS: int
    OUTBOX_MAX_ATTEMPTS: int
    BACKOFF_BASE: timedelta
    BACKOFF_MAX: timedelta
    LEASE: timedelta
    SMS_URL: str
    SMS_SECRET: str
    WEBHOOK_ALLOW_HTTP: bool
    WEBHOOK_ALLOW_PRIVATE: bool


POSFLEET_NOTIFY: NotifyPolicy = {
    # A delivery is tried this many times (30 s, 1 min, 2 min … 6 h apart), then dead-lettered.
    "MAX_ATTEMPTS": int(env("NOTIFY_MAX_ATTEMPTS", "8")),
    "OUTBOX_MAX_ATTEMPTS": 10,
    "BACKOFF_BASE": timedelta(seconds=int(env("NOTIFY_BACKOFF_SECONDS", "30"))),
    "BACKOFF_MAX": timedelta(hours=6),
    # A worker that claimed a delivery and died: it is tried again once this has passed.
    "LEASE": timedelta(minutes=5),
    # SMS provider adapter: JSON POST {"id", "to", "text"}, signed with HMAC-SHA256 of the body.
    "SMS_URL": env("SMS_URL"),
    "SMS_SECRET": env("SMS_SECRET"),
    "WEBHOOK_ALLOW_HTTP": env_bool("WEBHOOK_ALLOW_HTTP", False),
    # Webhooks to loopback or private addresses (SSRF) are refused unless this is set (tests, labs).
    "WEBHOOK_ALLOW_PRIVATE": env_bool("WEBHOOK_ALLOW_PRIVATE", False),
}


class ExpiryPolicy(TypedDict):
    NOTICE_DAYS: tuple[int, ...]
    GRACE_DAYS: int


# Service expiry (到期): notices this many days before, then a grace period, then suspension.
POSFLEET_EXPIRY: ExpiryPolicy = {
    "NOTICE_DAYS": tuple(int(d) for d in env("EXPIRY_NOTICE_DAYS", "30,7,1").split(",") if d.strip()),
    "GRACE_DAYS": int(env("EXPIRY_GRACE_DAYS", "15")),
}

# Device health: a heartbeat reporting a position more than this many metres from its store's
# coordinates (beyond the fix's own accuracy) raises a relocation alert (移机告警) for review.
POSFLEET_RELOCATION_DISTANCE_M = int(env("RELOCATION_DISTANCE_M", "2000"))

# Payment channels (支付渠道) a terminal is unbound from at closure (parties/channels/): where their
# gateway is (`posfleet simulate channels` serves one on loopback at the default) and how many seconds
# to wait for a connection and for an answer; a timeout is resolved by asking the channel again.
POSFLEET_CHANNELS_URL = env("CHANNELS_URL", "http://127.0.0.1:8585")
# The ISO 8583 gateway (docs/gateway.md) and the issuer host it asks before approving a sale
# (`posfleet simulate issuer` listens on 8584 in the embedded tier).
POSFLEET_GATEWAY_BIND = env("GATEWAY_BIND", "127.0.0.1:8583")
POSFLEET_ISSUER_ADDRESS = env("ISSUER_ADDRESS", "127.0.0.1:8584")
POSFLEET_ISSUER_TIMEOUT = float(env("ISSUER_TIMEOUT", "2.0"))
POSFLEET_CHANNELS_TIMEOUT = float(env("CHANNELS_TIMEOUT", "5"))


def _master_keys() -> dict[str, str]:
    """Master keys that wrap the per-subject data keys. ``POSFLEET_MASTER_KEYS`` is ``id=base64,...``;
    without it (development, tests) one key is derived from SECRET_KEY. Production requires it."""
    given = env("MASTER_KEYS")
    if given:
        return dict(item.strip().split("=", 1) for item in given.split(",") if item.strip())
    derived = hashlib.sha256(f"posfleet-keyring:{SECRET_KEY}".encode()).digest()
    return {"dev": base64.urlsafe_b64encode(derived).decode()}


class Keyring(TypedDict):
    CURRENT: str
    KEYS: dict[str, str]


# Personal data (KYC) is sealed per data subject (platform/keyring.py).
POSFLEET_KEYRING: Keyring = {"KEYS": _master_keys(), "CURRENT": ""}
POSFLEET_KEYRING["CURRENT"] = env("MASTER_KEY_CURRENT") or next(iter(POSFLEET_KEYRING["KEYS"]))


class ApplicationPolicy(TypedDict):
    REVIEW_SLA_HOURS: int
    REMIND_BEFORE_HOURS: int
    DOCUMENT_MAX_BYTES: int
    MAX_TERMINALS: int
    OFFER: dict[str, object]


# Applications (申请): the review clock, uploads, and the standard contract offer shown before submitting.
POSFLEET_APPLICATIONS: ApplicationPolicy = {
    "REVIEW_SLA_HOURS": int(env("APPLICATION_REVIEW_SLA_HOURS", "48")),
    "REMIND_BEFORE_HOURS": int(env("APPLICATION_REMIND_BEFORE_HOURS", "8")),
    "DOCUMENT_MAX_BYTES": 5 * 1024 * 1024,
    "MAX_TERMINALS": 50,
    "OFFER": {
        "term_months": 12,
        "annual_fee_fen": 9_900,
        "deposit_fen": 29_900,
        "min_term_months": 12,
        "penalty_rule": "remaining_months",
        "penalty_monthly_fen": 1_000,
        "penalty_cap_fen": 12_000,
        "recovery_fee_fen": 5_000,
        "damage_prices": {"A": 0, "B": 5_000, "C": 30_000},
    },
}

# Uploads (KYC documents) stay in memory and are sealed before anything is written: no plaintext
# temporary file on disk. A file above the limit is not accepted at all.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024


class ClosurePolicy(TypedDict):
    REVIEW_DAYS: int
    REMIND_BEFORE_HOURS: int
    RETURN_DAYS: int
    RETURN_ADDRESS: str
    STEP_LEASE_SECONDS: int
    RETRY_BASE_SECONDS: int
    RETRY_MAX_SECONDS: int
    BACKUP_DIR: Path
    RETENTION_YEARS: int
    AGENT_REVIEW_DAYS: int
    COMPLAINT_ACK_DAYS: int
    COMPLAINT_RESOLVE_DAYS: int


# Closure (注销): the review clock (maker-checker SLA), the device return, the step runner's lease and
# back-off, where data backups are kept, and how long a closed merchant's records stay (floor: 5 years).
POSFLEET_CLOSURE: ClosurePolicy = {
    "REVIEW_DAYS": int(env("CLOSURE_REVIEW_DAYS", "7")),
    "REMIND_BEFORE_HOURS": int(env("CLOSURE_REMIND_BEFORE_HOURS", "24")),
    "RETURN_DAYS": int(env("CLOSURE_RETURN_DAYS", "14")),
    "RETURN_ADDRESS": env(
        "CLOSURE_RETURN_ADDRESS", "posfleet returns warehouse, 88 Zhangjiang Road, Pudong, Shanghai 201203"
    ),
    "STEP_LEASE_SECONDS": int(env("CLOSURE_STEP_LEASE_SECONDS", "120")),
    "RETRY_BASE_SECONDS": int(env("CLOSURE_RETRY_BASE_SECONDS", "30")),
    "RETRY_MAX_SECONDS": int(env("CLOSURE_RETRY_MAX_SECONDS", "3600")),
    "BACKUP_DIR": Path(env("BACKUP_DIR", str(VAR_DIR / "backups"))),
    "RETENTION_YEARS": max(5, int(env("CLOSURE_RETENTION_YEARS", "5"))),
    # Ending with the agent (ADR 0023): the agent's review clock; a complaint's clocks (acknowledge, answer).
    "AGENT_REVIEW_DAYS": int(env("CLOSURE_AGENT_REVIEW_DAYS", "5")),
    "COMPLAINT_ACK_DAYS": int(env("COMPLAINT_ACK_DAYS", "3")),
    "COMPLAINT_RESOLVE_DAYS": int(env("COMPLAINT_RESOLVE_DAYS", "7")),
}

# The Ed25519 key that signs merchants' data backups (closure/backup_signing.py): 32 bytes, base64.
# Unset (development, tests), it is derived from SECRET_KEY, so it stays the same across restarts.
POSFLEET_BACKUP_SIGNING_KEY = env("BACKUP_SIGNING_KEY")
