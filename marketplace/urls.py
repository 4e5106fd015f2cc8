"""Web pages of the marketplace. Each area has its own module so that work on
one does not collide with another."""

from django.urls import include, path

urlpatterns = [
    path("", include("marketplace.urls_recordings")),
    path("", include("marketplace.urls_imports")),
    path("", include("marketplace.urls_listings")),
    path("", include("marketplace.urls_catalogue")),
]
