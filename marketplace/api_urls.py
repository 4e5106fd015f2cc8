"""API of the marketplace, under /api/v1/."""

from django.urls import include, path

urlpatterns = [
    path("", include("marketplace.api_urls_recordings")),
    path("", include("marketplace.api_urls_listings")),
    path("", include("marketplace.api_urls_catalogue")),
]
