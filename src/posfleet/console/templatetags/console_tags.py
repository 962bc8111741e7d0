"""Small template helpers of the console: status badges and sortable column links."""

from __future__ import annotations

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.http import QueryDict
from django.utils.html import format_html
from django.utils.safestring import SafeString

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
