"""Upload pages for recordings. The recording's own page (``recording_detail``,
``/recordings/<uid>/``) lives in ``urls_listings``; this module is included
first, so ``/recordings/upload/`` is never read as a recording's uid."""

from django.urls import path

from marketplace import views_upload

urlpatterns = [
    path("recordings/upload/", views_upload.recording_upload, name="recording_upload"),
]
