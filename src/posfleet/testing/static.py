"""Static files as production has them (docs/adr/0032): collected with production's storage (hashed
names, a manifest, brotli and gzip copies) and served by WhiteNoise from STATIC_ROOT alone.

The test settings serve the apps' folders directly (no collectstatic: it takes half a minute); the tests
that check what production sends collect once per run (the ``production_static`` fixture) and run under
``production_static_settings``. The storage is read from the base settings, which production keeps: a
change there is what these tests see.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.management import call_command
from django.test import override_settings

from posfleet.config.settings import base


@contextmanager
def production_static_settings(root: Path) -> Iterator[None]:
    """Within: ``{% static %}`` answers production's hashed URLs from ``root``'s manifest and WhiteNoise
    (in a handler created within) serves ``root`` only, as production does."""
    with override_settings(
        STATIC_ROOT=root,
        STORAGES={**base.STORAGES},
        WHITENOISE_USE_FINDERS=False,
        WHITENOISE_AUTOREFRESH=False,
        WHITENOISE_SKIP_COMPRESS_EXTENSIONS=base.WHITENOISE_SKIP_COMPRESS_EXTENSIONS,
        DEBUG=False,
    ):
        yield


def collect_production_static(root: Path) -> Path:
    """``posfleet collectstatic`` into ``root`` as a deployment runs it; returns ``root``."""
    with production_static_settings(root):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root
