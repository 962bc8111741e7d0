"""Transaction search (filters, sorting, pages; live with htmx) and its streaming CSV/Excel/Parquet
export."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from posfleet.billing import exports
from posfleet.billing.selectors import find_transactions
from posfleet.console.paging import CappedPaginator
from posfleet.console.views.base import console_login_required, is_htmx, render_page
from posfleet.console.views.money.common import signed_in
from posfleet.console.views.money.forms import PAGE_SIZE, TransactionFilterForm
from posfleet.iam.web import actor_from_request
from posfleet.platform.errors import DomainError

COLUMNS = (
    ("time", _("Time")),
    ("merchant", _("Merchant")),
    ("", _("Terminal")),
    ("", _("Kind")),
    ("", _("Payment method")),
    ("amount", _("Amount")),
    ("fee", _("Fee")),
    ("", _("Settlement")),
)


@dataclass(frozen=True)
class Column:
    key: str
    label: object
    direction: str
    next_sort: str
    numeric: bool


def _columns(sort: str, show_merchant: bool) -> list[Column]:
    current, descending = sort.lstrip("-"), sort.startswith("-")
    columns = []
    for key, label in COLUMNS:
        if key == "merchant" and not show_merchant:
            continue
        direction = ("desc" if descending else "asc") if key and key == current else ""
        next_sort = "" if not key else (key if direction == "desc" else f"-{key}")
        columns.append(Column(key, label, direction, next_sort, key in {"amount", "fee"}))
    return columns


@console_login_required
@require_GET
def transaction_list(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    form = TransactionFilterForm(request.GET, user=user)
    transactions = find_transactions(user, form.search(), form.sort_key()).select_related(
        "merchant", "terminal"
    )
    if form.range_error:
        transactions = transactions.none()
    page = CappedPaginator(transactions, PAGE_SIZE).get_page(form.page_number())
    query = form.canonical()
    params = query.copy()
    params.pop("page", None)
    export_query = params.copy()
    export_query.pop("sort", None)
    context = {
        "form": form,
        "page": page,
        "params": params,
        "export_query": export_query.urlencode(),
        "columns": _columns(form.sort_key(), "merchant" in form.fields),
        "show_merchant": "merchant" in form.fields,
        "active_filters": form.active_count(),
        "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
    }
    response = render_page(request, "console/money/transactions.html", context, partial="table")
    if is_htmx(request):
        canonical = request.path + (f"?{query.urlencode()}" if query else "")
        current = request.htmx.current_url_abs_path  # type: ignore[attr-defined]
        response["HX-Push-Url"] = canonical if canonical != current else "false"
    return response


@console_login_required
@require_GET
def transaction_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """The search's transactions as a streamed CSV, Excel or Parquet file (the filters of the list, any
    number of rows, constant memory); one audit event per export."""
    if fmt not in exports.FORMATS:
        raise Http404
    user = signed_in(request)
    form = TransactionFilterForm(request.GET, user=user)
    if form.range_error:
        return HttpResponse(form.range_error, status=422, content_type="text/plain; charset=utf-8")
    try:
        chunks = exports.stream_transactions(actor=actor_from_request(request), search=form.search(), fmt=fmt)
    except DomainError as exc:
        return HttpResponse(str(exc.detail), status=exc.status, content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(chunks, content_type=exports.FORMATS[fmt][0])
    response["Content-Disposition"] = f'attachment; filename="{exports.filename(fmt)}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return cast(HttpResponse, response)  # a streaming response; the decorators only pass it on
