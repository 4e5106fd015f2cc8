from django.urls import path

from marketplace import views_catalogue

urlpatterns = [
    path("catalogue/", views_catalogue.catalogue, name="catalogue"),
    path("catalogue/<int:listing_id>/", views_catalogue.catalogue_detail, name="catalogue_detail"),
    path(
        "catalogue/preview/<str:uid>/",
        views_catalogue.catalogue_preview,
        name="catalogue_preview",
    ),
]
