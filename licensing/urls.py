"""Web pages of licensing: the cart and checkout, orders and receipts,
licenses with their downloads, manifest and certificate, the public
certificate pages, and the staff list of overdue deletion attestations."""

from django.urls import path

from licensing import views

org = "orgs/<slug:slug>/"
lic = org + "licenses/<str:uid>/"

urlpatterns = [
    # Cart and checkout
    path("cart/add/", views.buyer_cart_add, name="buyer_cart_add"),
    path(org + "cart/", views.buyer_cart, name="buyer_cart"),
    path(org + "cart/remove/", views.buyer_cart_remove, name="buyer_cart_remove"),
    path(org + "checkout/", views.buyer_checkout, name="buyer_checkout"),
    # Orders
    path(org + "orders/", views.buyer_orders, name="buyer_orders"),
    path(org + "orders/<str:number>/", views.buyer_order_detail, name="buyer_order_detail"),
    path(
        org + "orders/<str:number>/status/",
        views.buyer_order_status,
        name="buyer_order_status",
    ),
    path(
        org + "orders/<str:number>/cancelled/",
        views.buyer_order_cancelled,
        name="buyer_order_cancelled",
    ),
    # Licenses
    path(org + "licenses/", views.buyer_licenses, name="buyer_licenses"),
    path(lic, views.buyer_license_detail, name="buyer_license_detail"),
    path(lic + "download/", views.buyer_license_download, name="buyer_license_download"),
    path(lic + "download.zip", views.buyer_license_zip, name="buyer_license_zip"),
    path(lic + "manifest.jsonld", views.buyer_license_manifest, name="buyer_license_manifest"),
    path(
        lic + "certificate.json",
        views.buyer_license_certificate_json,
        name="buyer_license_certificate_json",
    ),
    path(lic + "renew/", views.buyer_license_renew, name="buyer_license_renew"),
    path(lic + "attestation/", views.buyer_license_attest, name="buyer_license_attest"),
    # Signed download links (short-lived; checked again when used)
    path("downloads/<str:token>/", views.license_download, name="license_download"),
    # Certificates
    path(
        "licenses/<str:uid>/certificate/",
        views.license_certificate_page,
        name="license_certificate_page",
    ),
    path("verify/", views.certificate_verify_page, name="certificate_verify"),
    # Staff
    path(
        "staff/licensing/attestations/",
        views.staff_attestations_overdue,
        name="staff_attestations_overdue",
    ),
]
