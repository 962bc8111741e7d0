"""One template for the screen and the PDF: the statement's HTML, and WeasyPrint turning it into an
A4 PDF with the CJK fonts installed on the machine, fetching nothing from anywhere."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

MONTHLY_DOCUMENT = "billing/statements/monthly.html"
MONTHLY_BODY = "billing/statements/monthly_body.html"
BATCH_DOCUMENT = "billing/statements/batch.html"
BATCH_BODY = "billing/statements/batch_body.html"
PDF_CONTENT_TYPE = "application/pdf"


def render_document(template: str, context: dict[str, Any]) -> str:
    """The whole statement as a stand-alone HTML document (styles inline, no links out)."""
    return render_to_string(template, {**context, "for_pdf": True})


def render_pdf(template: str, context: dict[str, Any]) -> bytes:
    """The statement as PDF bytes, in the active language. Nothing is fetched: every URL is refused."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    html = render_document(template, context)
    return HTML(string=html, url_fetcher=URLFetcher(allowed_protocols=())).write_pdf()
