"""Console views, one module per area. ``config/urls.py`` uses ``healthz``, ``home`` and ``not_found``."""

from posfleet.console.views.system import healthz, home, not_found

__all__ = ["healthz", "home", "not_found"]
