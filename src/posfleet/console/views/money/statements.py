"""Statements and settlements: the monthly statement and the batch detail on screen and as PDF (one
template for both), the list of a merchant's statements, and the list of settlement batches."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_GET

from posfleet.billing import selectors as money
from posfleet.billing.statements import (
    BATCH_DOCUMENT,
    MONTHLY_DOCUMENT,
    PDF_CONTENT_TYPE,
    Month,
    batch_detail,
    monthly_statement,
    render_pdf,
    settlement_rows,
    statement_months,
)
from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import (
    forbidden,
    may_list_settlements,
    merchant_in_scope,
    own_merchant,
    signed_in,
)
from posfleet.iam.selectors import provider
from posfleet.platform.clock import today
from posfleet.platform.errors import NotFound

SETTLEMENTS_PAGE = 50


def _month(text: str) -> Month:
    try:
        month = Month.parse(text)
    except ValueError as exc:
        raise Http404 from exc
    if month > Month.of(today()):
        raise Http404  # no statement of the future
    return month


def _provider_name() -> str:
    root = provider()
    return root.name if root is not None else ""


def _pdf(content: bytes, name: str) -> HttpResponse:
    response = HttpResponse(content, content_type=PDF_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


@console_login_required
@require_GET
def my_statements(request: HttpRequest) -> HttpResponse:
    """``/console/money/statements/``: a merchant's own statements; others choose a merchant first."""
    user = signed_in(request)
    merchant = own_merchant(user)
    if merchant is None:
        return HttpResponseRedirect(reverse("console:money"))
    return HttpResponseRedirect(reverse("console:statements", args=[merchant.mid]))


@console_login_required
@require_GET
def statement_list(request: HttpRequest, mid: str) -> HttpResponse:
    merchant = merchant_in_scope(signed_in(request), mid)
    months = statement_months(merchant.pk, until=today(), limit=36)
    return render_page(request, "console/money/statements.html", {"merchant": merchant, "months": months})


def _statement_context(request: HttpRequest, mid: str, month_text: str) -> dict[str, Any]:
    merchant = merchant_in_scope(signed_in(request), mid)
    month = _month(month_text)
    return {
        "merchant": merchant,
        "statement": monthly_statement(merchant, month),
        "provider_name": _provider_name(),
        "batch_url_prefix": reverse("console:settlements"),
        "previous": month.plus(-1),
        "next": month.plus(1) if month.plus(1) <= Month.of(today()) else None,
    }


@console_login_required
@require_GET
def statement_view(request: HttpRequest, mid: str, month: str) -> HttpResponse:
    return render_page(request, "console/money/statement.html", _statement_context(request, mid, month))


@console_login_required
@require_GET
def statement_pdf(request: HttpRequest, mid: str, month: str) -> HttpResponse:
    context = _statement_context(request, mid, month)
    statement = context["statement"]
    return _pdf(
        render_pdf(MONTHLY_DOCUMENT, context), f"statement-{statement.merchant.mid}-{statement.month}.pdf"
    )


@console_login_required
@require_GET
def settlement_list(request: HttpRequest) -> HttpResponse:
    """Settlement batches for staff and agents (their merchants'); merchants read their statements."""
    user = signed_in(request)
    if not may_list_settlements(user):
        return forbidden(request)
    batches = money.settlements_visible_to(user).order_by("-business_date", "merchant__mid")
    mid = request.GET.get("merchant", "").strip().upper()[:15]
    if mid:
        batches = batches.filter(merchant__mid=mid)
    page = Paginator(batches, SETTLEMENTS_PAGE).get_page(request.GET.get("page"))
    rows = settlement_rows(list(page.object_list))
    return render_page(
        request, "console/money/settlements.html", {"page": page, "rows": rows, "mid": mid}, partial="results"
    )


def _batch_context(request: HttpRequest, pk: int) -> dict[str, Any]:
    try:
        batch = money.settlement_for(signed_in(request), pk)
    except NotFound as exc:
        raise Http404 from exc
    return {"detail": batch_detail(batch), "provider_name": _provider_name(), "batch": batch}


@console_login_required
@require_GET
def settlement_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render_page(request, "console/money/settlement.html", _batch_context(request, pk))


@console_login_required
@require_GET
def settlement_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    context = _batch_context(request, pk)
    batch = context["batch"]
    name = f"settlement-{batch.merchant.mid}-{batch.business_date:%Y%m%d}.pdf"
    return _pdf(render_pdf(BATCH_DOCUMENT, context), name)
