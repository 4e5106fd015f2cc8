from django.urls import path

from licensing import api

lic = "licenses/<str:license_id>/"

urlpatterns = [
    path("licenses/", api.LicenseListApi.as_view(), name="license-list"),
    path(lic, api.LicenseDetailApi.as_view(), name="license-detail"),
    path(
        lic + "download-links/",
        api.LicenseDownloadLinksApi.as_view(),
        name="license-download-links",
    ),
    path(lic + "archive/", api.LicenseArchiveApi.as_view(), name="license-archive"),
    path(lic + "manifest/", api.LicenseManifestApi.as_view(), name="license-manifest"),
    path(lic + "certificate/", api.LicenseCertificateApi.as_view(), name="license-certificate"),
    path(
        lic + "deletion-attestation/",
        api.LicenseDeletionAttestationApi.as_view(),
        name="license-deletion-attestation",
    ),
    path("orders/", api.OrderListApi.as_view(), name="order-list"),
    path("orders/<str:number>/", api.OrderDetailApi.as_view(), name="order-detail"),
]
