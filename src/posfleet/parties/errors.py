"""Refusals of the parties context (stable codes; the API and console map them once)."""

from django.utils.translation import gettext_lazy as _

from posfleet.platform.errors import Conflict


class ChannelAlreadyBound(Conflict):
    code = "channel_already_bound"
    title = _("This terminal is bound to this payment channel already.")
