"""API routes for a performer's listings and a recording's sub-resources
(signature, provenance, consent). The recordings collection and a
recording's own resource live in api_urls_recordings.py."""

from django.urls import path

from marketplace import api_listings as api

urlpatterns = [
    path("listings/", api.ListingListApi.as_view(), name="listing-list"),
    path("listings/<int:listing_id>/", api.ListingDetailApi.as_view(), name="listing-detail"),
    path(
        "listings/<int:listing_id>/submit/", api.ListingSubmitApi.as_view(), name="listing-submit"
    ),
    path(
        "listings/<int:listing_id>/unpublish/",
        api.ListingUnpublishApi.as_view(),
        name="listing-unpublish",
    ),
    path(
        "listings/<int:listing_id>/review/", api.ListingReviewApi.as_view(), name="listing-review"
    ),
    path(
        "recordings/<str:uid>/signature/",
        api.RecordingSignatureApi.as_view(),
        name="recording-signature",
    ),
    path(
        "recordings/<str:uid>/provenance/",
        api.RecordingProvenanceApi.as_view(),
        name="recording-provenance",
    ),
    path(
        "recordings/<str:uid>/consent/",
        api.RecordingConsentApi.as_view(),
        name="recording-consent",
    ),
    path(
        "recordings/<str:uid>/consent/withdraw/",
        api.RecordingConsentWithdrawApi.as_view(),
        name="recording-consent-withdraw",
    ),
    path(
        "recordings/<str:uid>/splits/",
        api.RecordingSplitsApi.as_view(),
        name="recording-splits",
    ),
    path("consent-text/", api.ConsentTextApi.as_view(), name="consent-text"),
]
