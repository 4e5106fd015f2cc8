from django.urls import path

from royalties import webhooks

urlpatterns = [
    path("webhooks/stripe/", webhooks.stripe_webhook, name="stripe_webhook"),
]
