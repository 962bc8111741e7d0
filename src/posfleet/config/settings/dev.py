"""`make run`: the embedded tier on this machine (SQLite under var/, demo data, loopback only)."""

from .base import *  # noqa: F403
from .base import POSFLEET, POSFLEET_NOTIFY, env, env_bool

DEBUG = env_bool("DEBUG", False)
WHITENOISE_USE_FINDERS = True  # serve app static files without a collectstatic step
WHITENOISE_AUTOREFRESH = True  # an edited static file is served whole without a restart
# No collectstatic here, so no manifest of hashed names: plain names (short-cached, revalidated).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
POSFLEET["DEMO_MODE"] = env_bool("DEMO_MODE", True)

from .base import VAR_DIR  # noqa: E402

(VAR_DIR / "static").mkdir(parents=True, exist_ok=True)

# Without an SMTP server configured, e-mail is written to var/mail/ (one file per message) and every
# notice also lands in the console's inbox.
if not env("SMTP_HOST"):
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(VAR_DIR / "mail")},
        }
    }
POSFLEET_NOTIFY["WEBHOOK_ALLOW_HTTP"] = env_bool("WEBHOOK_ALLOW_HTTP", True)
