"""Console views, one module per area. ``config/urls.py`` uses ``healthz``, ``home`` and ``not_found``,
``config/errors.py`` ``bad_request``."""

from posfleet.console.views.system import bad_request, healthz, home, not_found

__all__ = ["bad_request", "healthz", "home", "not_found"]
