"""``django.contrib.admin`` with our site as its default (a module of its own: app configs load before
models, and the site needs the login views)."""

from django.contrib.admin.apps import AdminConfig


class PosfleetAdminConfig(AdminConfig):
    """The admin site is iam/admin_site.py: the console's login, a verified session, step-up for
    edits of identities (docs/adr/0020)."""

    default_site = "posfleet.iam.admin_site.PosfleetAdminSite"
