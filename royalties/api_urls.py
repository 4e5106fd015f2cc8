from django.urls import path

from royalties import api, api_usage

urlpatterns = [
    path("usage-events/", api.UsageEventsApi.as_view(), name="usage-events"),
    path(
        "usage-events/<str:event_id>/", api.UsageEventDetailApi.as_view(), name="usage-event-detail"
    ),
    path(
        "licenses/<str:license_id>/usage/",
        api_usage.LicenseUsageApi.as_view(),
        name="license-usage",
    ),
]
