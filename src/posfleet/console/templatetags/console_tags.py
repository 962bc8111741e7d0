"""Small template helpers of the console: status badges and sortable column links."""

from __future__ import annotations

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.http import QueryDict
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from posfleet.console.presentation import status_label

register = template.Library()


@register.simple_tag
def status_badge(status: str | None, sn: str = "") -> SafeString:
    """The status as a coloured badge with its translated label (``data-testid="status-<SN>"``)."""
    if not status:
        return format_html('<span class="text-body-tertiary">—</span>')
    if sn:
        return format_html(
            '<span class="badge status-badge status-{}" data-status="{}" data-testid="status-{}">{}</span>',
            status,
            status,
            sn,
            status_label(status),
        )
    return format_html(
        '<span class="badge status-badge status-{}" data-status="{}">{}</span>',
        status,
        status,
        status_label(status),
    )


@register.simple_tag
def with_params(params: QueryDict, **changes: object) -> str:
    """``params`` with some keys set (or removed when None), as ``?a=1&b=2`` (or ``?`` when empty)."""
    query = params.copy()
    for key, value in changes.items():
        if value is None or value == "":
            query.pop(key, None)
        else:
            query[key] = str(value)
    return "?" + query.urlencode()


@register.filter
def num(value: int | str | None) -> str:
    """An integer with a comma every three digits in every language (1,234,567), as finance reads it.

    Django's zh-hans format has no thousands separator at all, so ``intcomma`` would print 1234567.
    """
    return intcomma(value, use_l10n=False)


@register.filter
def metres(value: int | None) -> str:
    """A distance for people: "850 m" below a kilometre, "12.3 km" (or "1,067 km") above."""
    if value is None:
        return "—"
    if value < 1000:
        return _("%(n)s m") % {"n": value}
    km = value / 1000
    shown = f"{km:.1f}" if km < 100 else intcomma(round(km), use_l10n=False)
    return _("%(n)s km") % {"n": shown}


@register.simple_tag
def coordinates(latitude: object, longitude: object, testid: str = "") -> SafeString:
    """WGS-84 coordinates as text ("31.230400, 121.473700") linked with a ``geo:`` URI: a maps
    application on the reader's device opens it; the page itself loads nothing from elsewhere."""
    if latitude is None or longitude is None:
        return format_html('<span class="text-body-tertiary">—</span>')
    return format_html(
        '<a class="font-monospace text-decoration-none" href="geo:{},{}" data-testid="{}" title="{}">'
        "{}, {}</a>",
        latitude,
        longitude,
        testid or "coordinates",
        _("WGS-84 latitude, longitude"),
        latitude,
        longitude,
    )
