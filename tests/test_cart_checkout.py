"""The cart and checkout in the browser: adding, removing, refusals before
payment, the redirect to Stripe Checkout (the double), the order pages, and
the simulated checkout used by `make run`."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Membership
from licensing.models import CartItem, License, Order
from marketplace.services import consent_withdraw, listing_unpublish
from tests.factories import make_organization
from tests.factories_licensing import licensing_world, pay, post_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return licensing_world(buy_first=False)


def _cart_url(world):
    return reverse("buyer_cart", args=[world["organization"].slug])


def _add(client, world, listing, **extra):
    return client.post(reverse("buyer_cart_add"), {"listing": listing.pk, **extra})


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_a_member_fills_the_cart_and_is_sent_to_stripe_checkout(client, world, stripe_double):
    client.force_login(world["member"])
    response = _add(client, world, world["listing"])
    assert response.status_code == 302 and response["Location"] == _cart_url(world)
    _add(client, world, world["second_listing"], organization=world["organization"].slug)
    page = client.get(_cart_url(world))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Grief, held back" in html and "Quiet rage" in html
    assert "$623.45" in html  # 500.00 + 123.45

    response = client.post(reverse("buyer_checkout", args=[world["organization"].slug]))
    order = Order.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{stripe_double.url}/pay/{order.checkout_session_id}"
    assert (order.status, order.total_minor, order.currency) == ("pending", 62_345, "USD")
    assert [line.title for line in order.lines.all()] == ["Grief, held back", "Quiet rage"]
    session = stripe_double.get(order.checkout_session_id, "checkout.session")
    assert session["amount_total"] == 62_345
    assert session["metadata"] == {
        "order": order.number,
        "organization": str(world["organization"].pk),
    }
    assert (
        session["customer"]
        == Membership.objects.get(user=world["member"]).organization.stripe_customer_id
    )
    assert session["success_url"].endswith(
        f"/orgs/{world['organization'].slug}/orders/{order.number}/?checkout=success"
    )
    assert session["cancel_url"].endswith(f"/orders/{order.number}/cancelled/")

    licenses = pay(stripe_double, order)
    assert len(licenses) == 2
    assert not CartItem.objects.exists()  # bought listings leave the cart


def test_removing_from_the_cart(client, world):
    client.force_login(world["member"])
    _add(client, world, world["listing"])
    response = client.post(
        reverse("buyer_cart_remove", args=[world["organization"].slug]),
        {"listing": world["listing"].pk},
    )
    assert response.status_code == 302
    assert not CartItem.objects.exists()


def test_an_empty_cart_cannot_be_checked_out(client, world, stripe_double):
    client.force_login(world["member"])
    response = client.post(
        reverse("buyer_checkout", args=[world["organization"].slug]), follow=True
    )
    assert "The cart is empty." in _messages(response)
    assert not Order.objects.exists()


@pytest.mark.parametrize("change", ["unpublished", "consent_withdrawn"])
def test_a_listing_that_left_the_market_is_refused_before_payment(
    client, world, stripe_double, change
):
    client.force_login(world["member"])
    _add(client, world, world["listing"])
    _add(client, world, world["second_listing"])
    listing = world["listing"]
    if change == "unpublished":
        listing_unpublish(listing=listing, by=world["performer"].user, reason="Re-recording")
    else:
        consent_withdraw(recording=listing.recordings.get(), by=world["performer"].user)

    page = client.get(_cart_url(world))
    assert "Can’t be bought right now" in page.content.decode()
    assert page.context["has_problems"]

    response = client.post(
        reverse("buyer_checkout", args=[world["organization"].slug]), follow=True
    )
    assert response.redirect_chain[-1][0] == _cart_url(world)
    (message,) = _messages(response)
    assert "“Grief, held back” is no longer on sale." in message
    assert not Order.objects.exists()
    assert not stripe_double.of_kind("checkout.session")  # nothing reached Stripe


def test_mixed_currencies_are_refused(client, world, stripe_double):
    from marketplace.models import Listing

    Listing.objects.filter(pk=world["second_listing"].pk).update(currency="EUR")
    client.force_login(world["member"])
    _add(client, world, world["listing"])
    _add(client, world, world["second_listing"])
    page = client.get(_cart_url(world))
    assert page.context["mixed_currencies"]
    response = client.post(
        reverse("buyer_checkout", args=[world["organization"].slug]), follow=True
    )
    assert "separate orders" in _messages(response)[0]
    assert not Order.objects.exists()


def test_adding_needs_membership_and_a_choice_of_organization(client, world, stripe_double):
    outsider = world["other_owner"]
    client.force_login(outsider)
    response = _add(client, world, world["listing"], organization=world["organization"].slug)
    assert response.status_code == 404  # someone else's organization: it does not exist for them

    # In two organizations and no choice made: asked to choose, nothing added.
    make_organization(owner=world["member"], name="Side Project")
    client.force_login(world["member"])
    response = _add(client, world, world["listing"])
    assert response.status_code == 302
    assert response["Location"] == reverse("catalogue_detail", args=[world["listing"].pk])
    assert not CartItem.objects.exists()


def test_a_listing_already_licensed_is_not_added_again(client, world, stripe_double):
    from tests.factories_licensing import buy

    buy(
        stripe_double,
        organization=world["organization"],
        buyer=world["owner"],
        listings=[world["listing"]],
    )
    client.force_login(world["member"])
    response = _add(client, world, world["listing"])
    assert response.status_code == 302
    follow = client.get(response["Location"])
    assert any("already holds an active license" in m for m in _messages(follow))
    assert not CartItem.objects.exists()


def test_outsiders_cannot_see_or_check_out_a_cart(client, world):
    client.force_login(world["other_owner"])
    slug = world["organization"].slug
    assert client.get(reverse("buyer_cart", args=[slug])).status_code == 404
    assert client.post(reverse("buyer_checkout", args=[slug])).status_code == 404
    client.logout()
    response = client.get(reverse("buyer_cart", args=[slug]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_cancel_page_says_nothing_was_charged(client, world, stripe_double):
    client.force_login(world["member"])
    _add(client, world, world["listing"])
    client.post(reverse("buyer_checkout", args=[world["organization"].slug]))
    order = Order.objects.get()
    page = client.get(
        reverse("buyer_order_cancelled", args=[world["organization"].slug, order.number])
    )
    assert page.status_code == 200
    assert "nothing was charged" in page.content.decode()
    assert CartItem.objects.count() == 1  # the cart is kept


def test_the_order_page_follows_the_payment(client, world, stripe_double):
    client.force_login(world["member"])
    _add(client, world, world["listing"])
    client.post(reverse("buyer_checkout", args=[world["organization"].slug]))
    order = Order.objects.get()
    slug = world["organization"].slug
    detail = reverse("buyer_order_detail", args=[slug, order.number]) + "?checkout=success"
    status = reverse("buyer_order_status", args=[slug, order.number])

    page = client.get(detail).content.decode()
    assert "Payment processing — this page updates when the payment is confirmed" in page
    assert '<meta http-equiv="refresh"' in page  # for browsers without JavaScript
    assert client.get(status).json() == {
        "number": order.number,
        "status": "pending",
        "label": "Awaiting payment",
        "waiting": True,
        "licenses": 0,
    }

    (license,) = pay(stripe_double, order)
    assert client.get(status).json()["status"] == "paid"
    page = client.get(detail).content.decode()
    assert "Payment confirmed — 1 license issued" in page
    assert license.uid in page
    assert "refresh" not in page


# --- The simulated gateway (make run) ---------------------------------------------------------


@pytest.fixture
def simulated(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.DEBUG = True


def _simulated_checkout(client, world):
    client.force_login(world["member"])
    _add(client, world, world["listing"])
    _add(client, world, world["second_listing"])
    response = client.post(reverse("buyer_checkout", args=[world["organization"].slug]))
    order = Order.objects.get()
    assert order.simulated
    assert response["Location"] == reverse("simulated_checkout", args=[order.checkout_session_id])
    return order, response["Location"]


def test_simulated_checkout_completes_through_the_same_fulfilment(
    client, world, simulated, mailoutbox, django_capture_on_commit_callbacks
):
    order, url = _simulated_checkout(client, world)
    page = client.get(url).content.decode()
    assert "Payment is simulated — no card is charged and no money moves" in page
    assert "Complete simulated payment" in page and "$623.45" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"action": "pay"})
    assert response["Location"] == (
        reverse("buyer_order_detail", args=[world["organization"].slug, order.number])
        + "?checkout=success"
    )
    order.refresh_from_db()
    assert order.status == "paid" and order.payment_intent_id.startswith("pi_sim_")
    assert License.objects.filter(order_line__order=order, status="active").count() == 2
    assert "SIMULATED" in mailoutbox[0].body  # the receipt says so


def test_simulated_checkout_can_be_cancelled(client, world, simulated):
    order, url = _simulated_checkout(client, world)
    response = client.post(url, {"action": "cancel"})
    assert response["Location"] == reverse(
        "buyer_order_cancelled", args=[world["organization"].slug, order.number]
    )
    order.refresh_from_db()
    assert order.status == "expired"
    assert not License.objects.exists()


def test_simulated_checkout_is_only_for_members_and_only_when_simulated(
    client, world, simulated, settings
):
    order, url = _simulated_checkout(client, world)
    client.force_login(world["other_owner"])
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "pay"}).status_code == 404
    client.force_login(world["member"])
    settings.DEBUG = False
    assert client.get(url).status_code == 404
    settings.DEBUG = True
    settings.STRIPE_SECRET_KEY = "sk_test_residuals"
    assert client.post(url, {"action": "pay"}).status_code == 404
    order.refresh_from_db()
    assert order.status == "pending"


def test_a_stripe_order_cannot_be_completed_on_the_simulated_page(
    client, world, stripe_double, settings
):
    client.force_login(world["member"])
    _add(client, world, world["listing"])
    client.post(reverse("buyer_checkout", args=[world["organization"].slug]))
    order = Order.objects.get()
    assert not order.simulated
    url = reverse("simulated_checkout", args=[order.checkout_session_id])
    assert client.post(url, {"action": "pay"}).status_code == 404
    # ... even if the key is later removed: the order was made with real Stripe.
    settings.STRIPE_SECRET_KEY = ""
    settings.DEBUG = True
    assert client.post(url, {"action": "pay"}).status_code == 404


def test_the_order_list_shows_receipts(client, world, stripe_double):
    client.force_login(world["owner"])
    _add(client, world, world["listing"])
    client.post(reverse("buyer_checkout", args=[world["organization"].slug]))
    order = Order.objects.get()
    post_event(None, stripe_double, stripe_double.pay_checkout_session(order.checkout_session_id))
    page = client.get(reverse("buyer_orders", args=[world["organization"].slug]))
    html = page.content.decode()
    assert order.number in html and "Receipt" in html and "$500.00" in html


# --- The "Add to cart" form on the catalogue page -----------------------------------------------


def _add_to_cart_html(rf, user, listing) -> str:
    from django.template import RequestContext, Template

    request = rf.get("/catalogue/")
    request.user = user
    template = Template("{% load licensing_cart %}{% add_to_cart listing %}")
    return template.render(RequestContext(request, {"listing": listing}))


def test_the_add_to_cart_form(rf, world, stripe_double):
    from django.contrib.auth.models import AnonymousUser

    from tests.factories_licensing import buy

    listing = world["listing"]
    assert _add_to_cart_html(rf, AnonymousUser(), listing).strip() == ""

    html = _add_to_cart_html(rf, world["member"], listing)
    assert f'action="{reverse("buyer_cart_add")}"' in html
    assert f'name="listing" value="{listing.pk}"' in html
    assert "<select" not in html  # one organization: no choice to make

    side = make_organization(owner=world["member"], name="Side Project")
    html = _add_to_cart_html(rf, world["member"], listing)
    assert "<select" in html and side.slug in html and world["organization"].slug in html

    buy(stripe_double, organization=side, buyer=world["member"], listings=[listing])
    html = _add_to_cart_html(rf, world["member"], listing)
    assert "Side Project holds" in html
    assert f'value="{world["organization"].slug}"' in html  # the other one can still buy

    html = _add_to_cart_html(rf, world["other_owner"], listing)
    assert "Add to cart" in html
    no_org = Membership.objects.filter(user=world["other_owner"]).delete()
    assert no_org
    html = _add_to_cart_html(rf, world["other_owner"], listing)
    assert "Create a buyer organization to license" in html
