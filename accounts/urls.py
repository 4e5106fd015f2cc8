from django.urls import path

from accounts import views

urlpatterns = [
    path("performer/", views.performer_dashboard, name="performer_dashboard"),
    path("performer/profile/", views.performer_profile, name="performer_profile"),
    path("performer/api-keys/", views.performer_api_keys, name="performer_api_keys"),
    path(
        "performer/api-keys/<int:key_id>/revoke/",
        views.performer_api_key_revoke,
        name="performer_api_key_revoke",
    ),
    path("buyer/", views.buyer_dashboard, name="buyer_dashboard"),
    path("orgs/new/", views.organization_create, name="organization_create"),
    path("orgs/<slug:slug>/", views.organization_detail, name="organization_detail"),
    path("orgs/<slug:slug>/edit/", views.organization_edit, name="organization_edit"),
    path("orgs/<slug:slug>/members/", views.organization_members, name="organization_members"),
    path(
        "orgs/<slug:slug>/members/<int:membership_id>/role/",
        views.membership_role,
        name="membership_role",
    ),
    path(
        "orgs/<slug:slug>/members/<int:membership_id>/remove/",
        views.membership_remove,
        name="membership_remove",
    ),
    path(
        "orgs/<slug:slug>/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("orgs/<slug:slug>/api-keys/", views.organization_api_keys, name="organization_api_keys"),
    path(
        "orgs/<slug:slug>/api-keys/<int:key_id>/revoke/",
        views.organization_api_key_revoke,
        name="organization_api_key_revoke",
    ),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
]
