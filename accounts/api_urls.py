from django.urls import path

from accounts import api

urlpatterns = [
    path("me/", api.MeApi.as_view(), name="me"),
    path("organizations/", api.OrganizationListApi.as_view(), name="organization-list"),
    path(
        "organizations/<slug:slug>/",
        api.OrganizationDetailApi.as_view(),
        name="organization-detail",
    ),
    path(
        "organizations/<slug:slug>/members/",
        api.OrganizationMembersApi.as_view(),
        name="organization-members",
    ),
]
