"""Routes under /api/v1/."""

from __future__ import annotations

from django.urls import path, re_path

from . import (
    deal_views,
    diff_views,
    fallback,
    import_views,
    reference_views,
    stream_views,
    views,
)

app_name = "api"

urlpatterns = [
    path("deals/", deal_views.DealListView.as_view(), name="deal-list"),
    path("deals/<uuid:deal_id>/", deal_views.DealDetailView.as_view(), name="deal-detail"),
    path("deals/<uuid:deal_id>/events/", deal_views.DealEventsView.as_view(), name="deal-events"),
    path(
        "deals/<uuid:deal_id>/events/stream/",
        stream_views.DealEventStreamView.as_view(),
        name="deal-event-stream",
    ),
    path("deals/<uuid:deal_id>/diff/", diff_views.DealDiffView.as_view(), name="deal-diff"),
    path("deals/<uuid:deal_id>/state/", deal_views.DealStateView.as_view(), name="deal-state"),
    path(
        "deals/<uuid:deal_id>/timeline/",
        deal_views.DealTimelineView.as_view(),
        name="deal-timeline",
    ),
    path("deals/<uuid:deal_id>/verify/", views.VerifyView.as_view(), name="deal-verify"),
    path("deals/<uuid:deal_id>/export/", views.ExportView.as_view(), name="deal-export"),
    path("events/", views.EventFeedView.as_view(), name="event-feed"),
    path("events/stream/", stream_views.EventStreamView.as_view(), name="event-stream"),
    path("ledger/digest/", views.LedgerDigestView.as_view(), name="ledger-digest"),
    path(
        "organisations/",
        reference_views.OrganisationListView.as_view(),
        name="organisation-list",
    ),
    path(
        "organisations/<uuid:organisation_id>/",
        reference_views.OrganisationDetailView.as_view(),
        name="organisation-detail",
    ),
    path("event-types/", reference_views.EventTypeListView.as_view(), name="event-type-list"),
    path(
        "event-types/<str:name>/",
        reference_views.EventTypeDetailView.as_view(),
        name="event-type-detail",
    ),
    path("imports/", import_views.ImportListView.as_view(), name="import-list"),
    path(
        "imports/<uuid:import_id>/",
        import_views.ImportDetailView.as_view(),
        name="import-detail",
    ),
    # Last: a path no route above matches is served by its canonical route (no trailing
    # slash, upper-case UUID) or answered 404 problem details, never a redirect or HTML.
    re_path(r"", fallback.unmatched, name="unmatched"),
]
