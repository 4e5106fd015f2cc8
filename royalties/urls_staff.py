"""Royalties pages for staff (included under /staff/)."""

from django.urls import path

from royalties import views_staff

urlpatterns = [
    path("royalties/", views_staff.staff_royalties, name="staff_royalties"),
    path(
        "royalties/cap-breaches/<int:breach_id>/review/",
        views_staff.staff_cap_breach_review,
        name="staff_cap_breach_review",
    ),
]
