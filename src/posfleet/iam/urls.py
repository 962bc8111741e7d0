from django.urls import path

from posfleet.iam import views

app_name = "iam"
urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("login/code/", views.login_code_view, name="login_code"),
    path("login/enrol/", views.login_enrol_view, name="login_enrol"),
    path("verify/", views.verify_view, name="verify"),
    path("logout/", views.logout_view, name="logout"),
    path("language/", views.language_view, name="language"),
    path("security/", views.security_view, name="security"),
    path("security/totp/start/", views.totp_start_view, name="totp_start"),
    path("security/totp/confirm/", views.totp_confirm_view, name="totp_confirm"),
    path("security/backup-codes/", views.backup_codes_view, name="backup_codes"),
    path("tokens/", views.tokens_view, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke_view, name="token_revoke"),
]
