from django.contrib import admin
from django.urls import include, path

from posfleet.api.urls import api
from posfleet.closure import web as closure_web
from posfleet.console import views as console_views
from posfleet.console.views.backups import backup_key

urlpatterns = [
    path("healthz", console_views.healthz, name="healthz"),
    path(".well-known/posfleet-backup-key", backup_key, name="backup_key"),
    path("api/v1/", api.urls),
    path("accounts/", include("posfleet.iam.urls")),
    path("console/", include("posfleet.console.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("verify/", closure_web.verify_form, name="closure_verify_form"),
    path("verify/<str:code>/", closure_web.verify, name="closure_verify"),
    path("admin/", admin.site.urls),
    path("", console_views.home, name="home"),
]

handler400 = "posfleet.config.errors.bad_request"
handler404 = "posfleet.console.views.not_found"
handler500 = "posfleet.config.errors.server_error"
