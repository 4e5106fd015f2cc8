"""Licensing test data, made the real way: listings through the marketplace
services, checkout through the gateway and the Stripe double, fulfilment
through a signed webhook posted to /webhooks/stripe/ (tasks run eagerly)."""

from __future__ import annotations

from django.test import Client, TestCase

from accounts.models import Membership
from licensing.models import License, Order
from licensing.services import checkout_start
from tests.factories import make_organization, make_performer, make_user
from tests.factories_marketplace import make_published_listing, make_sellable_recording
from tests.stripe_double import sign_payload

WEBHOOK_SECRET = "whsec_test_residuals"
SUCCESS_URL = "http://testserver/orgs/x/orders/{order}/?checkout=success"
CANCEL_URL = "http://testserver/orgs/x/orders/{order}/cancelled/"


def post_event(
    client: Client | None,
    stripe_double,
    event: dict,
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
):
    """Post ``event`` to the webhook endpoint, signed as Stripe signs it, and
    run what the view enqueues after commit (eager tasks)."""
    payload = stripe_double.event_json(event)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return (client or Client()).post(
            "/webhooks/stripe/",
            payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign_payload(payload, secret, timestamp=timestamp),
        )


def start_checkout(*, organization, buyer, listings=None, renews=None) -> Order:
    """Checkout of the cart (or ``listings``), as the cart page starts it."""
    started = checkout_start(
        organization=organization,
        user=buyer,
        listings=listings,
        renews=renews,
        success_url=SUCCESS_URL,
        cancel_url=CANCEL_URL,
    )
    return started.order


def pay(stripe_double, order: Order, *, client: Client | None = None) -> list[License]:
    """The customer pays at Stripe; Stripe sends checkout.session.completed."""
    event = stripe_double.pay_checkout_session(order.checkout_session_id)
    response = post_event(client, stripe_double, event)
    assert response.status_code == 200, response.content
    return list(License.objects.filter(order_line__order=order).order_by("id"))


def buy(stripe_double, *, organization, buyer, listings, renews=None, client=None) -> list[License]:
    order = start_checkout(organization=organization, buyer=buyer, listings=listings, renews=renews)
    return pay(stripe_double, order, client=client)


def make_listing(performer, reviewer, *, title: str, price_minor: int = 50_000, **terms):
    recording = make_sellable_recording(
        performer,
        title=f"{title} take",
        uses=("model_training", "evaluation", "fine_tuning", "commercial_deployment"),
    )
    return make_published_listing(
        performer, [recording], reviewer=reviewer, title=title, price_minor=price_minor, **terms
    )


def licensing_world(stripe_double=None, *, buy_first: bool = True) -> dict:
    """A performer with two published listings, a buyer organization (owner
    and member), another organization, staff — and, with ``buy_first``, the
    organization's license for the first listing, bought through the double."""
    staff = make_user(email="reviewer@residuals.example", full_name="Rhea Reviewer", is_staff=True)
    performer = make_performer(email="lena@performers.example", legal_name="Lena Lead")
    first = make_listing(performer, staff, title="Grief, held back", price_minor=50_000)
    second = make_listing(performer, staff, title="Quiet rage", price_minor=12_345)
    owner = make_user(email="owner@deepfeelings.example", full_name="Olga Owner")
    organization = make_organization(owner=owner, name="Deep Feelings AI")
    member = make_user(email="member@deepfeelings.example", full_name="Milo Member")
    Membership.objects.create(organization=organization, user=member, role=Membership.Role.MEMBER)
    other_owner = make_user(email="owner@rival.example", full_name="Rita Rival")
    other = make_organization(owner=other_owner, name="Rival Robotics")
    world = {
        "staff": staff,
        "performer": performer,
        "listing": first,
        "second_listing": second,
        "organization": organization,
        "owner": owner,
        "member": member,
        "other_organization": other,
        "other_owner": other_owner,
        "license": None,
    }
    if buy_first:
        (world["license"],) = buy(
            stripe_double, organization=organization, buyer=member, listings=[first]
        )
    return world


def bearer(*, created_by, organization=None, performer=None, name: str = "pipeline"):
    """(the Authorization header for the test client, the ApiKey) of a new key."""
    from accounts.services import api_key_create

    issued = api_key_create(
        name=name, created_by=created_by, organization=organization, performer=performer
    )
    return {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}, issued.api_key
