import time

from allauth.account import app_settings as account_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.authentication import get_authentication_records
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request):
        next_url = super().get_login_redirect_url(request)
        return next_url or reverse("dashboard")

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        """A password typed at sign-in a few minutes ago is as fresh as one
        typed to reauthenticate: don't ask a staff member who just signed in
        for it again before they set up two-factor authentication."""
        if not super().is_reauthentication_required(app=app, **kwargs):
            return False
        request = getattr(self, "request", None)
        if request is None or not request.user.is_authenticated:
            return True
        records = get_authentication_records(request, request.user)
        timeout = account_settings.REAUTHENTICATION_TIMEOUT
        return not any(time.time() - record.get("at", 0) < timeout for record in records)
