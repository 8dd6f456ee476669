from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from tracker.api.fallback import unmatched
from tracker.api.login_throttle import admin_login
from tracker.api.views import DocsView, HealthView

urlpatterns = [
    # Before the admin's own login route, which it shadows: failed logins are throttled.
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("tracker.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", DocsView.as_view(url_name="schema"), name="docs"),
    path("health/", HealthView.as_view(), name="health"),
    # Last: anything else under /api/ (`/api/v1` without its slash, `/api/schema`) is served at
    # its canonical path or answered 404 as problem details, whatever DEBUG says.
    re_path(r"^api/", unmatched),
]

# Errors raised outside DRF views (unknown paths, ids that are not UUIDs) under /api/ and
# /health/ are problem details too; elsewhere Django's own pages.
handler400 = "tracker.api.problems.handler400"
handler403 = "tracker.api.problems.handler403"
handler404 = "tracker.api.problems.handler404"
handler500 = "tracker.api.problems.handler500"
