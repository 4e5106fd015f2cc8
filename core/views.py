from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.selectors import dashboards_for
from core.api import error_response
from core.broker import broker_status


def landing(request):
    return render(request, "core/landing.html")


@never_cache
@require_GET
def healthz(request):
    """200 when both the database and the broker answer, 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        database = {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # any database failure is a failed health check
        database = {"ok": False, "vendor": connection.vendor, "error": exc.__class__.__name__}
    broker = broker_status()
    broker_body = {"ok": broker.ok, "transport": broker.transport}
    if broker.error:
        broker_body["error"] = broker.error
    healthy = database["ok"] and broker.ok
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "database": database, "broker": broker_body},
        status=200 if healthy else 503,
    )


@login_required
def dashboard(request):
    """Send each person to the dashboard of their role; with several roles,
    let them choose; with none yet, help them pick one."""
    dashboards = dashboards_for(request.user)
    if len(dashboards) == 1:
        return redirect(dashboards[0][1])
    return render(request, "core/choose_dashboard.html", {"dashboards": dashboards})


def admin_login(request):
    if request.user.is_authenticated and not request.user.is_staff:
        # Sending a signed-in non-staff person to the login page would loop.
        return render(request, "403.html", status=403)
    query = urlencode({"next": request.GET.get("next", "/admin/")})
    return redirect(f"{reverse('account_login')}?{query}")


def _wants_json(request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", ""
    )


def not_found(request, exception=None):
    if _wants_json(request):
        return error_response("not_found", "Not found.", 404)
    return render(request, "404.html", status=404)


def server_error(request):
    if _wants_json(request):
        return error_response("server_error", "Something went wrong on our side.", 500)
    return render(request, "500.html", status=500)
