from django.urls import path

from posfleet.console.views import actions, dashboard, expiry, notifications, terminals
from posfleet.console.views.money import (
    comparison,
    contracts,
    deposits,
    overview,
    plans,
    statements,
    transactions,
)

app_name = "console"
urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("terminals/", terminals.terminal_list, name="terminals"),
    path("terminals/actions/<slug:command>/", actions.terminal_action, name="action"),
    path("terminals/<str:sn>/", terminals.terminal_detail, name="terminal"),
    # Money
    path("expiry/", expiry.expiry_calendar, name="expiry"),
    path("expiry/renew/", expiry.expiry_renew, name="expiry_renew"),
    path("inbox/", notifications.inbox, name="inbox"),
    path("inbox/read/", notifications.inbox_read, name="inbox_read"),
    path("notifications/", notifications.deliveries, name="deliveries"),
    path("notifications/<int:pk>/resend/", notifications.delivery_resend_view, name="delivery_resend"),
    path("money/", overview.money_home, name="money"),
    path("money/statements/", statements.my_statements, name="my_statements"),
    path("merchants/<str:mid>/money/", overview.merchant_money, name="merchant_money"),
    path("merchants/<str:mid>/statements/", statements.statement_list, name="statements"),
    path("merchants/<str:mid>/statements/<str:month>/", statements.statement_view, name="statement"),
    path("merchants/<str:mid>/statements/<str:month>/pdf/", statements.statement_pdf, name="statement_pdf"),
    path("merchants/<str:mid>/compare/", comparison.comparison_view, name="comparison"),
    path("merchants/<str:mid>/plan/", plans.plan_assign_view, name="plan_assign"),
    path("settlements/", statements.settlement_list, name="settlements"),
    path("settlements/<int:pk>/", statements.settlement_detail, name="settlement"),
    path("settlements/<int:pk>/pdf/", statements.settlement_pdf, name="settlement_pdf"),
    path("transactions/", transactions.transaction_list, name="transactions"),
    path("transactions/export/<slug:fmt>/", transactions.transaction_export, name="transactions_export"),
    path("plans/", plans.plan_list, name="plans"),
    path("plans/new/", plans.plan_new, name="plan_new"),
    path("plans/<slug:code>/", plans.plan_detail, name="plan"),
    path("plans/<slug:code>/versions/new/", plans.plan_version_new, name="plan_version_new"),
    path("contracts/", contracts.contract_list, name="contracts"),
    path("contracts/new/", contracts.contract_new, name="contract_new"),
    path("contracts/<int:pk>/", contracts.contract_detail, name="contract"),
    path("contracts/<int:pk>/accept/", contracts.contract_accept_view, name="contract_accept"),
    path("deposits/<int:pk>/release/", deposits.deposit_release_view, name="deposit_release"),
]
