"""``{% load licensing_cart %}{% add_to_cart listing %}``: the "Add to cart"
form of the catalogue page, for the organizations the person belongs to
(a choice when there are several; a note when one already holds a license
or has the listing in its cart)."""

from __future__ import annotations

from django import template

from accounts.selectors import organizations_for_user
from licensing.models import CartItem, License

register = template.Library()


@register.inclusion_tag("licensing/_add_to_cart.html", takes_context=True)
def add_to_cart(context, listing):
    request = context["request"]
    user = request.user
    if not user.is_authenticated:
        return {"show": False}
    organizations = list(organizations_for_user(user))
    held = dict(
        License.objects.filter(
            listing=listing,
            organization__in=organizations,
            status__in=[License.Status.ACTIVE, License.Status.SCHEDULED],
        ).values_list("organization_id", "uid")
    )
    in_cart = set(
        CartItem.objects.filter(listing=listing, organization__in=organizations).values_list(
            "organization_id", flat=True
        )
    )
    choices = [
        {"organization": o, "license": held.get(o.pk), "in_cart": o.pk in in_cart}
        for o in organizations
    ]
    return {
        "show": True,
        "listing": listing,
        "choices": choices,
        "buyable": [c for c in choices if not c["license"] and not c["in_cart"]],
        "csrf_token": context.get("csrf_token"),
    }
