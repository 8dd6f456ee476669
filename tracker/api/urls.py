"""Routes under /api/v1/."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "api"

urlpatterns = [
    path("events/", views.EventFeedView.as_view(), name="event-feed"),
    path("deals/<uuid:deal_id>/verify/", views.VerifyView.as_view(), name="deal-verify"),
    path("deals/<uuid:deal_id>/export/", views.ExportView.as_view(), name="deal-export"),
]
