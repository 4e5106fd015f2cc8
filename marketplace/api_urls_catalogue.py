from django.urls import path

from marketplace import api_catalogue

urlpatterns = [
    path("catalogue/", api_catalogue.CatalogueListApi.as_view(), name="catalogue-list"),
    path(
        "catalogue/<int:listing_id>/",
        api_catalogue.CatalogueDetailApi.as_view(),
        name="catalogue-detail",
    ),
]
