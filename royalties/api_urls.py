from django.urls import path

from royalties import api

urlpatterns = [
    path("usage-events/", api.UsageEventsApi.as_view(), name="usage-events"),
    path(
        "usage-events/<str:event_id>/", api.UsageEventDetailApi.as_view(), name="usage-event-detail"
    ),
]
