"""POST /webhooks/stripe/: signatures, replays, concurrency, every event type
the purchase flow routes, and the faults around them."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.models import StripeEvent
from licensing.models import License, Order
from marketplace.services import consent_withdraw, listing_unpublish
from royalties import ledger
from royalties.models import JournalEntry
from tests.factories_licensing import licensing_world, pay, post_event, start_checkout
from tests.stripe_double import sign_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(stripe_double):
    return licensing_world(stripe_double, buy_first=False)


@pytest.fixture
def order(world):
    return start_checkout(
        organization=world["organization"], buyer=world["member"], listings=[world["listing"]]
    )


def _cash():
    return ledger.balance(ledger.platform_account(ledger.PLATFORM_CASH, "USD"))


def _revenue():
    return ledger.balance(ledger.platform_account(ledger.PLATFORM_REVENUE, "USD"))


def _available(performer):
    return ledger.balance(ledger.performer_account(performer, "available", "USD"))


def _charge(stripe_double, order):
    order.refresh_from_db()
    intent = stripe_double.get(order.payment_intent_id, "payment_intent")
    return stripe_double.get(intent["latest_charge"], "charge")


# --- Signatures ---------------------------------------------------------------------------


def _raw_post(client, payload: str, signature: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return client.post("/webhooks/stripe/", payload, content_type="application/json", **headers)


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(lambda p: None, id="unsigned"),
        pytest.param(lambda p: sign_payload(p, "whsec_intruder"), id="wrong-secret"),
        pytest.param(
            lambda p: sign_payload(p, "whsec_test_residuals", timestamp=int(time.time()) - 301),
            id="stale",
        ),
        pytest.param(lambda p: "t=123,v1=deadbeef", id="garbage"),
    ],
)
def test_badly_signed_webhooks_are_refused_and_change_nothing(
    client, stripe_double, order, signature
):
    event = stripe_double.pay_checkout_session(order.checkout_session_id)
    payload = stripe_double.event_json(event)
    response = _raw_post(client, payload, signature(payload))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not StripeEvent.objects.exists()
    order.refresh_from_db()
    assert order.status == "pending"
    assert not License.objects.exists()


def test_a_tampered_payload_is_refused(client, stripe_double, order):
    event = stripe_double.pay_checkout_session(order.checkout_session_id)
    payload = stripe_double.event_json(event)
    signature = sign_payload(payload, "whsec_test_residuals")
    forged = json.loads(payload)
    forged["data"]["object"]["payment_status"] = "paid"
    forged["data"]["object"]["id"] = "cs_test_someone_else"
    response = _raw_post(client, json.dumps(forged), signature)
    assert response.status_code == 400


def test_a_rotated_secret_still_verifies(client, stripe_double, order, settings):
    settings.STRIPE_WEBHOOK_SECRETS = ["whsec_new_one", "whsec_test_residuals"]
    event = stripe_double.pay_checkout_session(order.checkout_session_id)
    assert post_event(client, stripe_double, event, secret="whsec_new_one").status_code == 200
    assert License.objects.count() == 1


# --- Replays and concurrency ------------------------------------------------------------------


def test_a_replayed_event_is_a_no_op(client, stripe_double, order, world):
    event = stripe_double.pay_checkout_session(order.checkout_session_id)
    first = post_event(client, stripe_double, event)
    assert first.json() == {"received": True, "handled": True}
    again = post_event(client, stripe_double, event)
    assert again.status_code == 200
    assert again.json() == {"received": True, "duplicate": True}
    assert License.objects.count() == 1
    assert JournalEntry.objects.filter(kind="sale").count() == 1
    assert StripeEvent.objects.get().outcome == "fulfilled"


def test_a_second_event_for_a_paid_order_changes_nothing(client, stripe_double, order):
    """Stripe may send completed and async_payment_succeeded for one session."""
    pay(stripe_double, order)
    event = stripe_double.settle_async_payment(order.checkout_session_id, succeeded=True)
    assert post_event(client, stripe_double, event).status_code == 200
    assert License.objects.count() == 1
    assert JournalEntry.objects.filter(kind="sale").count() == 1


def _post_from_threads(payloads: list[tuple[str, str]]) -> list[int]:
    barrier = threading.Barrier(len(payloads))
    statuses: list[int] = []

    def deliver(payload, signature):
        try:
            own_client = Client()
            barrier.wait(timeout=10)
            response = own_client.post(
                "/webhooks/stripe/",
                payload,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=signature,
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=p) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_twice_at_once_fulfils_once(stripe_double):
    world = licensing_world(stripe_double, buy_first=False)
    order = start_checkout(
        organization=world["organization"], buyer=world["member"], listings=[world["listing"]]
    )
    event = stripe_double.pay_checkout_session(order.checkout_session_id)
    payload = stripe_double.event_json(event)
    signature = sign_payload(payload, "whsec_test_residuals")
    assert _post_from_threads([(payload, signature), (payload, signature)]) == [200, 200]
    assert License.objects.count() == 1
    assert JournalEntry.objects.filter(kind="sale").count() == 1
    assert StripeEvent.objects.count() == 1
    order.refresh_from_db()
    assert order.status == "paid"


@pytest.mark.django_db(transaction=True)
def test_two_events_for_one_order_at_once_fulfil_once(stripe_double):
    """Two workers, two different events (completed and async succeeded) for
    the same session: the order row lock lets one fulfil."""
    world = licensing_world(stripe_double, buy_first=False)
    order = start_checkout(
        organization=world["organization"], buyer=world["member"], listings=[world["listing"]]
    )
    completed = stripe_double.pay_checkout_session(order.checkout_session_id)
    succeeded = stripe_double.settle_async_payment(order.checkout_session_id, succeeded=True)
    payloads = []
    for event in (completed, succeeded):
        payload = stripe_double.event_json(event)
        payloads.append((payload, sign_payload(payload, "whsec_test_residuals")))
    assert _post_from_threads(payloads) == [200, 200]
    assert License.objects.count() == 1
    assert JournalEntry.objects.filter(kind="sale").count() == 1
    assert sorted(StripeEvent.objects.values_list("outcome", flat=True)) == [
        "already_fulfilled",
        "fulfilled",
    ]


# --- Events the flow does not expect -------------------------------------------------------


def test_an_event_for_an_unknown_session_is_answered_200_and_changes_nothing(
    client, stripe_double, order
):
    event = stripe_double.event(
        "checkout.session.completed",
        {
            "id": "cs_test_not_ours",
            "object": "checkout.session",
            "payment_status": "paid",
            "payment_intent": "pi_not_ours",
        },
    )
    response = post_event(client, stripe_double, event)
    assert response.status_code == 200
    assert StripeEvent.objects.get().outcome == "unknown_session"
    order.refresh_from_db()
    assert order.status == "pending"
    assert not License.objects.exists()


def test_an_unhandled_event_type_is_recorded_and_answered_200(client, stripe_double):
    event = stripe_double.event("customer.created", {"id": "cus_1", "object": "customer"})
    response = post_event(client, stripe_double, event)
    assert response.status_code == 200
    assert response.json() == {"received": True, "handled": False}
    stored = StripeEvent.objects.get()
    assert (stored.type, stored.outcome) == ("customer.created", "ignored: no handler")
    assert stored.processed_at is not None


# --- The success page and the webhook, in either order -----------------------------------------


def _order_page(client, world, order):
    client.force_login(world["member"])
    url = reverse("buyer_order_detail", args=[world["organization"].slug, order.number])
    return client.get(url + "?checkout=success").content.decode()


def test_the_webhook_before_the_success_page(client, stripe_double, world, order):
    (license,) = pay(stripe_double, order)
    page = _order_page(client, world, order)
    assert "Payment confirmed" in page and license.uid in page
    assert "Payment processing" not in page


def test_the_success_page_before_the_webhook(client, stripe_double, world, order):
    stripe_double.pay_checkout_session(order.checkout_session_id)  # paid, webhook not yet in
    page = _order_page(client, world, order)
    assert "Payment processing — this page updates when the payment is confirmed" in page
    assert "LIC-" not in page


# --- Asynchronous payment methods -------------------------------------------------------------


def test_an_async_payment_waits_then_succeeds(client, stripe_double, world, order):
    event = stripe_double.pay_checkout_session(order.checkout_session_id, delayed=True)
    post_event(client, stripe_double, event)
    order.refresh_from_db()
    assert order.status == "processing"
    assert not License.objects.exists()
    assert "Your bank is still confirming the payment" in _order_page(client, world, order)

    event = stripe_double.settle_async_payment(order.checkout_session_id, succeeded=True)
    post_event(client, stripe_double, event)
    order.refresh_from_db()
    assert order.status == "paid"
    assert License.objects.get().status == "active"
    assert _cash() == 50_000


def test_an_async_payment_that_fails(client, stripe_double, world, order):
    post_event(
        client,
        stripe_double,
        stripe_double.pay_checkout_session(order.checkout_session_id, delayed=True),
    )
    post_event(
        client,
        stripe_double,
        stripe_double.settle_async_payment(order.checkout_session_id, succeeded=False),
    )
    order.refresh_from_db()
    assert order.status == "failed"
    assert not License.objects.exists()
    assert _cash() == 0
    assert "The payment did not go through" in _order_page(client, world, order)


def test_an_expired_checkout(client, stripe_double, world, order):
    post_event(
        client, stripe_double, stripe_double.expire_checkout_session(order.checkout_session_id)
    )
    order.refresh_from_db()
    assert order.status == "expired"
    assert "Checkout ended without payment" in _order_page(client, world, order)


# --- After payment: refunds and disputes ----------------------------------------------------------


def test_an_external_full_refund_suspends_licenses_and_reverses_the_sale(
    client, stripe_double, world, order
):
    (license,) = pay(stripe_double, order)
    assert (_cash(), _revenue(), _available(world["performer"])) == (50_000, -10_000, -40_000)

    charge = _charge(stripe_double, order)
    charge.update(amount_refunded=charge["amount"], refunded=True)  # refunded in the dashboard
    post_event(client, stripe_double, stripe_double.refund_event(charge["id"]))

    license.refresh_from_db()
    order.refresh_from_db()
    assert license.status == "suspended" and license.status_reason == "Payment refunded."
    assert (order.status, order.refunded_minor) == ("refunded", 50_000)
    assert (_cash(), _revenue(), _available(world["performer"])) == (0, 0, 0)
    sale = JournalEntry.objects.get(kind="sale")
    assert sale.reversed_by.lines.count() == sale.lines.count()
    assert "This order was refunded" in _order_page(client, world, order)


def test_a_dispute_suspends_licenses(client, stripe_double, world, order):
    (license,) = pay(stripe_double, order)
    post_event(
        client, stripe_double, stripe_double.open_dispute(_charge(stripe_double, order)["id"])
    )
    license.refresh_from_db()
    order.refresh_from_db()
    assert license.status == "suspended"
    assert order.status == "disputed"


# --- Listings that left the market between checkout and payment -------------------------------


@pytest.mark.parametrize("change", ["unpublished", "consent_withdrawn"])
def test_a_line_paid_after_its_listing_left_the_market_is_refunded(
    client, stripe_double, world, change
):
    listing, kept = world["listing"], world["second_listing"]
    order = start_checkout(
        organization=world["organization"], buyer=world["member"], listings=[listing, kept]
    )
    if change == "unpublished":
        listing_unpublish(listing=listing, by=world["performer"].user, reason="Pulled")
    else:
        consent_withdraw(recording=listing.recordings.get(), by=world["performer"].user)

    licenses = pay(stripe_double, order)

    assert [lic.listing_id for lic in licenses] == [kept.pk]
    (refund,) = stripe_double.of_kind("refund")
    assert refund["amount"] == listing.price_minor == 50_000
    assert refund["payment_intent"] == Order.objects.get().payment_intent_id
    order.refresh_from_db()
    assert order.status == "paid" and order.refunded_minor == 50_000
    assert "“Grief, held back” is no longer on sale." in order.status_reason
    assert "Those lines are refunded." in order.status_reason
    # Only the licensed line was posted as a sale.
    assert _cash() == kept.price_minor
    page = _order_page(client, world, order)
    assert "Not issued — refunded" in page and "Those lines are refunded." in page

    # Stripe then reports the refund we made: the remaining license stays active.
    post_event(
        client, stripe_double, stripe_double.refund_event(_charge(stripe_double, order)["id"])
    )
    assert License.objects.get().status == "active"


# --- Retries: a failing handler, a broker that is down, events left behind -----------------------


class Flaky:
    """A handler that fails its first ``failures`` calls, then does its job."""

    def __init__(self, handler, failures: int):
        self.handler, self.failures, self.calls = handler, failures, 0

    def __call__(self, obj):
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("database went away")
        return self.handler(obj)


@pytest.fixture
def flaky(monkeypatch):
    from royalties import webhooks

    def install(event_type: str, failures: int) -> Flaky:
        handler = Flaky(webhooks.HANDLERS[event_type], failures)
        monkeypatch.setitem(webhooks.HANDLERS, event_type, handler)
        return handler

    return install


def test_a_handler_that_fails_once_is_retried_and_the_order_fulfilled(
    client, stripe_double, order, flaky
):
    handler = flaky("checkout.session.completed", failures=1)
    response = post_event(
        client, stripe_double, stripe_double.pay_checkout_session(order.checkout_session_id)
    )
    assert response.status_code == 200
    assert handler.calls == 2
    stored = StripeEvent.objects.get()
    assert stored.processed_at is not None and stored.outcome == "fulfilled"
    assert License.objects.get().status == "active"
    assert JournalEntry.objects.filter(kind="sale").count() == 1


def test_retries_back_off_exponentially(stripe_double, order, flaky, monkeypatch):
    from royalties.tasks import event_retry_countdown, stripe_event_process_task

    assert [event_retry_countdown(n) for n in range(9)] == [
        30, 60, 120, 240, 480, 960, 1920, 3600, 3600,
    ]  # fmt: skip
    countdowns = []
    retry = stripe_event_process_task.retry

    def recording_retry(*args, **kwargs):
        countdowns.append(kwargs["countdown"])
        return retry(*args, **kwargs)

    monkeypatch.setattr(stripe_event_process_task, "retry", recording_retry)
    flaky("checkout.session.completed", failures=3)
    post_event(None, stripe_double, stripe_double.pay_checkout_session(order.checkout_session_id))
    assert countdowns == [30, 60, 120]
    assert StripeEvent.objects.get().outcome == "fulfilled"


def test_an_event_whose_retries_ran_out_is_processed_when_stripe_sends_it_again(
    client, stripe_double, order, flaky
):
    handler = flaky("checkout.session.completed", failures=9)  # the first try and 8 retries
    event = stripe_double.pay_checkout_session(order.checkout_session_id)
    assert post_event(client, stripe_double, event).status_code == 200
    stored = StripeEvent.objects.get()
    assert stored.processed_at is None
    assert stored.outcome == "failed: RuntimeError: database went away"
    assert not License.objects.exists()

    # Stripe re-sends it (or someone replays it from the dashboard): not a no-op this time.
    again = post_event(client, stripe_double, event)
    assert again.json() == {"received": True, "duplicate": True, "requeued": True}
    assert handler.calls == 10
    stored.refresh_from_db()
    assert stored.processed_at is not None and stored.outcome == "fulfilled"
    assert License.objects.count() == 1


def test_when_the_broker_is_down_stripe_is_told_to_send_again(
    client, stripe_double, order, monkeypatch
):
    from kombu.exceptions import OperationalError

    from royalties.tasks import stripe_event_process_task

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    event = stripe_double.pay_checkout_session(order.checkout_session_id)
    with monkeypatch.context() as patched:
        patched.setattr(stripe_event_process_task, "delay", broker_down)
        response = post_event(client, stripe_double, event)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "queue_unavailable"
    stored = StripeEvent.objects.get()
    assert (stored.processed_at, stored.outcome) == (None, "waiting: could not be queued")
    assert not License.objects.exists()

    # Stripe retries the delivery once the broker is back: it is processed.
    response = post_event(client, stripe_double, event)
    assert response.status_code == 200
    assert response.json()["requeued"] is True
    stored.refresh_from_db()
    assert stored.outcome == "fulfilled"
    order.refresh_from_db()
    assert order.status == "paid" and License.objects.count() == 1


def test_the_sweeper_requeues_events_left_unprocessed(client, stripe_double, order, flaky):
    from royalties.tasks import stripe_events_sweep_task
    from royalties.webhooks import stripe_events_requeue

    handler = flaky("checkout.session.completed", failures=9)
    event = stripe_double.pay_checkout_session(order.checkout_session_id)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        post_event(client, stripe_double, event)
    assert StripeEvent.objects.get().processed_at is None

    with time_machine.travel(start + timedelta(minutes=4), tick=False):
        assert stripe_events_requeue() == []  # retries may still be on their way
    with time_machine.travel(start + timedelta(minutes=6), tick=False):
        assert stripe_events_sweep_task.delay().get() == 1
    assert handler.calls == 10  # once, without a new chain of retries
    stored = StripeEvent.objects.get()
    assert stored.outcome == "fulfilled"
    assert License.objects.count() == 1
    with time_machine.travel(start + timedelta(minutes=20), tick=False):
        assert stripe_events_requeue() == []  # done events are left alone


def test_the_sweeper_gives_up_when_stripe_would(client, stripe_double, order, flaky):
    from royalties.webhooks import stripe_events_requeue

    flaky("checkout.session.completed", failures=100)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        post_event(
            client, stripe_double, stripe_double.pay_checkout_session(order.checkout_session_id)
        )
    stored = StripeEvent.objects.get()
    with time_machine.travel(start + timedelta(days=2, hours=23), tick=False):
        assert stripe_events_requeue() == [stored.event_id]
    with time_machine.travel(start + timedelta(days=3, minutes=1), tick=False):
        assert stripe_events_requeue() == []


# --- Our own refund, whenever Stripe's charge.refunded is processed ------------------------------


def test_our_refund_reported_before_we_record_it_is_still_ours(
    client, stripe_double, world, monkeypatch
):
    """The charge.refunded event for the refund we make is processed while
    our call to Stripe is still returning: the kept license stays active."""
    from core.payments.stripe_gateway import StripeGateway
    from royalties import webhooks

    listing, kept = world["listing"], world["second_listing"]
    order = start_checkout(
        organization=world["organization"], buyer=world["member"], listings=[listing, kept]
    )
    listing_unpublish(listing=listing, by=world["performer"].user, reason="Pulled")
    refund_create = StripeGateway.refund_create
    outcomes = []

    def refund_then_webhook(self, **kwargs):
        refund = refund_create(self, **kwargs)
        charge = stripe_double.get(stripe_double.get(refund.id, "refund")["charge"], "charge")
        outcomes.append(webhooks.HANDLERS["charge.refunded"](dict(charge)))
        return refund

    monkeypatch.setattr(StripeGateway, "refund_create", refund_then_webhook)
    (license,) = pay(stripe_double, order)

    assert outcomes == ["own_refund"]
    license.refresh_from_db()
    assert license.status == "active"
    order.refresh_from_db()
    assert (order.status, order.refunded_minor, order.refund_requested_minor) == (
        "paid",
        50_000,
        50_000,
    )
    assert _cash() == kept.price_minor  # the kept sale is not reversed
    assert not JournalEntry.objects.exclude(kind="sale").exists()


def test_a_refund_that_fails_for_good_stops_being_expected(
    client, stripe_double, world, monkeypatch
):
    from core.models import AuditEvent
    from core.payments import GatewayError
    from core.payments.stripe_gateway import StripeGateway

    listing, kept = world["listing"], world["second_listing"]
    order = start_checkout(
        organization=world["organization"], buyer=world["member"], listings=[listing, kept]
    )
    listing_unpublish(listing=listing, by=world["performer"].user, reason="Pulled")

    def refused(self, **kwargs):
        raise GatewayError("The charge was disputed.", code="charge_disputed")

    monkeypatch.setattr(StripeGateway, "refund_create", refused)
    with pytest.raises(GatewayError):
        pay(stripe_double, order)
    order.refresh_from_db()
    assert (order.refunded_minor, order.refund_requested_minor) == (0, 0)
    assert AuditEvent.objects.filter(action="order.lines_refund_failed").exists()


# --- Refunds and disputes that arrive before the payment is matched to the order ------------------


def test_a_refund_before_checkout_completed_waits_for_the_order(
    client, stripe_double, world, order
):
    from royalties.webhooks import stripe_events_requeue

    completed = stripe_double.pay_checkout_session(order.checkout_session_id)
    charge = _charge_from_session(stripe_double, order)
    charge.update(amount_refunded=charge["amount"], refunded=True)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert (
            post_event(client, stripe_double, stripe_double.refund_event(charge["id"])).status_code
            == 200
        )
    refund_event = StripeEvent.objects.get(type="charge.refunded")
    assert (refund_event.processed_at, refund_event.outcome) == (None, "waiting: order_not_paid")

    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        (license,) = pay_with_event(client, stripe_double, completed, order)
        assert license.status == "active"
    with time_machine.travel(start + timedelta(minutes=6), tick=False):
        assert stripe_events_requeue() == [refund_event.event_id]
    license.refresh_from_db()
    order.refresh_from_db()
    assert license.status == "suspended" and order.status == "refunded"
    assert license.attestation.reason == "refunded"
    refund_event.refresh_from_db()
    assert refund_event.outcome == "licenses_suspended"


def _charge_from_session(stripe_double, order):
    session = stripe_double.get(order.checkout_session_id, "checkout.session")
    intent = stripe_double.get(session["payment_intent"], "payment_intent")
    return stripe_double.get(intent["latest_charge"], "charge")


def pay_with_event(client, stripe_double, event, order):
    assert post_event(client, stripe_double, event).status_code == 200
    return list(License.objects.filter(order_line__order=order))


def test_a_refund_finds_its_order_by_the_metadata_when_the_payment_intent_is_missing(
    client, stripe_double, world, order
):
    (license,) = pay(stripe_double, order)
    intent = Order.objects.get().payment_intent_id
    Order.objects.filter(pk=order.pk).update(payment_intent_id="")  # never recorded
    charge = _charge_from_session(stripe_double, order)
    assert charge["metadata"]["order"] == order.number
    charge.update(amount_refunded=charge["amount"], refunded=True)
    post_event(client, stripe_double, stripe_double.refund_event(charge["id"]))

    assert StripeEvent.objects.get(type="charge.refunded").outcome == "licenses_suspended"
    order.refresh_from_db()
    assert (order.status, order.payment_intent_id) == ("refunded", intent)
    license.refresh_from_db()
    assert license.status == "suspended"


def test_a_dispute_before_checkout_completed_is_acted_on_later(client, stripe_double, world, order):
    from royalties.webhooks import stripe_events_requeue

    completed = stripe_double.pay_checkout_session(order.checkout_session_id)
    dispute = stripe_double.open_dispute(_charge_from_session(stripe_double, order)["id"])
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        post_event(client, stripe_double, dispute)
    assert StripeEvent.objects.get(type="charge.dispute.created").outcome == (
        "waiting: unknown_payment"
    )
    with time_machine.travel(start + timedelta(seconds=10), tick=False):
        (license,) = pay_with_event(client, stripe_double, completed, order)
    with time_machine.travel(start + timedelta(minutes=6), tick=False):
        stripe_events_requeue()
    license.refresh_from_db()
    assert license.status == "suspended"
    assert Order.objects.get().status == "disputed"
