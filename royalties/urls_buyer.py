"""Royalties pages for buyers: usage, monthly reports and royalty invoices."""

from django.urls import path, re_path

from royalties import views_buyer

org = "orgs/<slug:slug>/"
month = r"^orgs/(?P<slug>[-a-zA-Z0-9_]+)/usage/reports/(?P<month>[0-9]{4}-[0-9]{2})"

urlpatterns = [
    path(org + "usage/", views_buyer.buyer_usage, name="buyer_usage"),
    re_path(month + r"/$", views_buyer.buyer_usage_report, name="buyer_usage_report"),
    re_path(month + r"\.csv$", views_buyer.buyer_usage_report_csv, name="buyer_usage_report_csv"),
    path(
        org + "royalty-invoices/",
        views_buyer.buyer_royalty_invoices,
        name="buyer_royalty_invoices",
    ),
]
