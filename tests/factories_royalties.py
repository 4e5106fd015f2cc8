"""Licenses bought the real way (checkout through the Stripe double, then the
fulfilment the webhook runs), for the royalties tests."""

from __future__ import annotations

from licensing.models import License
from licensing.services import checkout_start
from royalties.sales import checkout_completed
from tests.factories import make_organization, make_performer, make_user
from tests.factories_marketplace import make_published_listing, make_sellable_recording


def buy(stripe_double, *, organization, buyer, listings) -> list[License]:
    started = checkout_start(
        organization=organization,
        user=buyer,
        listings=listings,
        success_url="http://127.0.0.1:8000/ok/{order}",
        cancel_url="http://127.0.0.1:8000/cancel/{order}",
    )
    event = stripe_double.pay_checkout_session(started.order.checkout_session_id)
    session = event["data"]["object"]
    checkout_completed(
        session_id=session["id"],
        payment_status=session["payment_status"],
        payment_intent=session["payment_intent"],
    )
    return list(License.objects.filter(order_line__order=started.order).order_by("id"))


def licensed_world(stripe_double, *, co_performer_bps: int | None = None, **terms):
    """A performer (optionally with a co-performer), a published listing with
    the given terms, a buyer organization and its active license."""
    from marketplace.services import splits_set

    staff = make_user(email="reviewer@residuals.example", is_staff=True)
    performer = make_performer(email="lead@performers.example", legal_name="Lena Lead")
    recording = make_sellable_recording(
        performer, uses=("model_training", "evaluation", "fine_tuning", "commercial_deployment")
    )
    co = None
    if co_performer_bps:
        co = make_performer(email="co@performers.example", legal_name="Cole Co")
        splits_set(
            recording=recording,
            by=performer.user,
            shares=[(performer, 10_000 - co_performer_bps), (co, co_performer_bps)],
        )
    terms.setdefault("uses", ("model_training", "commercial_deployment"))
    listing = make_published_listing(performer, [recording], reviewer=staff, **terms)
    owner = make_user(email="owner@ai.example")
    organization = make_organization(owner=owner, name="Deep Feelings AI")
    (license,) = buy(stripe_double, organization=organization, buyer=owner, listings=[listing])
    return {
        "performer": performer,
        "co_performer": co,
        "recording": recording,
        "listing": listing,
        "organization": organization,
        "owner": owner,
        "license": license,
        "staff": staff,
    }
