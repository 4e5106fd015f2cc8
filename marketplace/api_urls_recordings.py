from django.urls import path

from marketplace import api_recordings

urlpatterns = [
    path("recordings/", api_recordings.RecordingListCreateApi.as_view(), name="recording-list"),
    path(
        "recordings/<str:uid>/",
        api_recordings.RecordingDetailApi.as_view(),
        name="recording-detail",
    ),
]
