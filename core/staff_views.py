from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

from core import selectors


def staff_required(view):
    """Anonymous visitors sign in; signed-in people who are not staff get 403
    (sending them to sign in again would loop). MFA is enforced for these
    paths by accounts.middleware.StaffMfaRequiredMiddleware."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            return render(request, "403.html", status=403)
        return view(request, *args, **kwargs)

    return wrapped


@staff_required
def staff_dashboard(request):
    return render(request, "core/staff_dashboard.html", selectors.staff_overview())
