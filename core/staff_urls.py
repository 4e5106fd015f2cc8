from django.urls import path

from core import staff_views

urlpatterns = [
    path("", staff_views.staff_dashboard, name="staff_dashboard"),
]
