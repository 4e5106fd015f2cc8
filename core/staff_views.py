from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render

from core import selectors


@staff_member_required(login_url="account_login")
def staff_dashboard(request):
    return render(request, "core/staff_dashboard.html", selectors.staff_overview())
