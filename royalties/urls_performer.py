"""Royalties pages for performers: their earnings and monthly statements.
Staff reach any performer's pages with ``?performer=<id>`` (see
royalties.views_performer)."""

from django.urls import path, re_path

from royalties import views_performer as views

MONTH = r"(?P<slug>20\d\d-(?:0[1-9]|1[0-2]))"

urlpatterns = [
    path("earnings/", views.earnings, name="performer_earnings"),
    path("earnings/statements/", views.statements, name="performer_statements"),
    re_path(rf"^earnings/statements/{MONTH}/$", views.statement, name="performer_statement"),
    re_path(
        rf"^earnings/statements/{MONTH}\.csv$",
        views.statement_csv_download,
        name="performer_statement_csv",
    ),
    re_path(
        rf"^earnings/statements/{MONTH}\.pdf$",
        views.statement_pdf_download,
        name="performer_statement_pdf",
    ),
]
