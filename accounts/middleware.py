"""Staff pages (the admin and /staff/) need a second factor in this session."""

from __future__ import annotations

from urllib.parse import urlencode

from allauth.account.authentication import get_authentication_records
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse


def session_passed_mfa(request) -> bool:
    return any(
        record.get("method") == "mfa"
        for record in get_authentication_records(request, request.user)
    )


class StaffMfaRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and user.is_staff
            and request.path.startswith(settings.RESIDUALS_STAFF_PATH_PREFIXES)
        ):
            query = urlencode({"next": request.get_full_path()})
            has_totp = Authenticator.objects.filter(
                user=user, type=Authenticator.Type.TOTP
            ).exists()
            if not has_totp:
                messages.warning(
                    request,
                    "Staff pages need two-factor authentication. Set up an authenticator app "
                    "to continue.",
                )
                return HttpResponseRedirect(f"{reverse('mfa_activate_totp')}?{query}")
            if not session_passed_mfa(request):
                return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{query}")
        return self.get_response(request)
