"""Pages for a performer's recordings after upload, their listings, and the
staff review queue. Recording pages match only real recording ids
(REC-XXXXXXXXXX), so /recordings/upload/ and /recordings/imports/ stay with
the upload and import pages."""

from django.urls import path, re_path

from marketplace import views

UID = r"(?P<uid>REC-[0-9A-Z]{10})"

urlpatterns = [
    re_path(rf"^recordings/{UID}/$", views.recording_detail, name="recording_detail"),
    re_path(
        rf"^recordings/{UID}/preview/$",
        views.recording_owner_preview,
        name="recording_owner_preview",
    ),
    re_path(
        rf"^recordings/{UID}/provenance/$",
        views.recording_provenance,
        name="recording_provenance",
    ),
    re_path(rf"^recordings/{UID}/consent/$", views.recording_consent, name="recording_consent"),
    re_path(
        rf"^recordings/{UID}/consent/withdraw/$",
        views.recording_consent_withdraw,
        name="recording_consent_withdraw",
    ),
    re_path(
        rf"^recordings/{UID}/signature/$", views.recording_signature, name="recording_signature"
    ),
    re_path(rf"^recordings/{UID}/splits/$", views.recording_splits, name="recording_splits"),
    path("listings/", views.listing_list, name="listing_list"),
    path("listings/new/", views.listing_new, name="listing_new"),
    path("listings/<int:pk>/", views.listing_detail, name="listing_detail"),
    path("listings/<int:pk>/edit/", views.listing_edit, name="listing_edit"),
    path("listings/<int:pk>/submit/", views.listing_submit, name="listing_submit"),
    path("listings/<int:pk>/unpublish/", views.listing_unpublish, name="listing_unpublish"),
    path("staff/listings/review/", views.staff_listing_review_queue, name="staff_listing_review"),
    path(
        "staff/listings/<int:pk>/approve/",
        views.staff_listing_approve,
        name="staff_listing_approve",
    ),
    path(
        "staff/listings/<int:pk>/reject/", views.staff_listing_reject, name="staff_listing_reject"
    ),
    path(
        "staff/listings/<int:pk>/changes-ok/",
        views.staff_listing_changes_ok,
        name="staff_listing_changes_ok",
    ),
    path(
        "staff/listings/<int:pk>/take-off-sale/",
        views.staff_listing_take_off_sale,
        name="staff_listing_take_off_sale",
    ),
]
