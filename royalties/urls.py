from django.urls import path

from royalties import views, webhooks

urlpatterns = [
    path("webhooks/stripe/", webhooks.stripe_webhook, name="stripe_webhook"),
    path(
        "payments/simulated/checkout/<str:session_id>/",
        views.simulated_checkout,
        name="simulated_checkout",
    ),
]
