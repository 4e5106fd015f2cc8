"""The simulated checkout page: only with the simulated gateway (no Stripe
key, DEBUG on). It says plainly that no money moves, then runs the same
fulfilment as Stripe's ``checkout.session.completed`` webhook."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from accounts.models import Membership
from core.payments import payments_simulated
from licensing.models import Order
from royalties import sales


def _simulated_order(request, session_id: str) -> Order:
    if not (payments_simulated() and settings.DEBUG):
        raise Http404("Payments are not simulated here.")
    order = get_object_or_404(
        Order.objects.select_related("organization"), checkout_session_id=session_id, simulated=True
    )
    if not Membership.objects.filter(organization=order.organization, user=request.user).exists():
        raise Http404("No such checkout.")
    return order


@login_required
def simulated_checkout(request, session_id: str):
    order = _simulated_order(request, session_id)
    slug = order.organization.slug
    detail = reverse("buyer_order_detail", args=[slug, order.number])
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "pay":
            if order.status in (Order.Status.PENDING, Order.Status.PROCESSING):
                digest = hashlib.sha256(session_id.encode()).hexdigest()[:24]
                sales.checkout_completed(
                    session_id=session_id, payment_status="paid", payment_intent=f"pi_sim_{digest}"
                )
            return redirect(detail + "?checkout=success")
        if action == "cancel":
            sales.checkout_expired(session_id=session_id)
            return redirect("buyer_order_cancelled", slug=slug, number=order.number)
    return render(
        request,
        "licensing/simulated_checkout.html",
        {
            "order": order,
            "organization": order.organization,
            "lines": list(order.lines.all()),
            "open": order.status in (Order.Status.PENDING, Order.Status.PROCESSING),
            "order_url": detail,
        },
    )
