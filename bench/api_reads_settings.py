"""Settings of the server that ``bench/api_reads.py`` starts: ``make run``'s settings (dev), plus the
bench-only bare views of ``api_reads_urls``. Nothing here is shipped: the app's URLconf is unchanged.

The one difference for the app's own requests is ``BareFirstMiddleware`` at the head of the stack,
which answers ``/bench/bare/…`` before any other middleware runs (one ``startswith`` per request).
"""

import os

from posfleet.config.settings.dev import *  # noqa: F403
from posfleet.config.settings.dev import DATABASES, MIDDLEWARE

ROOT_URLCONF = "api_reads_urls"
MIDDLEWARE = ["api_reads_urls.BareFirstMiddleware", *MIDDLEWARE]

# ``--conn-max-age N`` (a proposal measured, not the app's setting): keep each thread's database
# connection for N seconds instead of opening one per request (SQLite's default here is 0).
if os.environ.get("BENCH_CONN_MAX_AGE"):
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ["BENCH_CONN_MAX_AGE"])
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
