"""Monthly performer statements: numbers from the ledger and the earnings
sub-ledger for a sale, royalties crossing the threshold, a royalty invoice
paid and a refund; reproducible after later postings; CSV and PDF."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import zlib
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.urls import reverse

from royalties import ledger
from royalties.invoicing import royalty_invoices_run
from royalties.ledger import Line
from royalties.models import JournalEntry
from royalties.statements import (
    StatementOutOfBalance,
    performer_statement,
    statement_csv,
    statement_pdf,
)
from royalties.tally import tally_usage
from royalties.usage import usage_events_ingest
from tests.factories_royalties import licensed_world
from tests.stripe_double import sign_payload

pytestmark = pytest.mark.django_db

OCTOBER, NOVEMBER, DECEMBER = date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)


def at(month: int, day: int, hour: int = 12):
    return time_machine.travel(datetime(2026, month, day, hour, tzinfo=UTC), tick=True)


def _webhook(client, stripe_double, event):
    payload = stripe_double.event_json(event)
    response = client.post(
        "/webhooks/stripe/",
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(payload, "whsec_test_residuals"),
    )
    assert response.status_code == 200, response.content


def report(world, events):
    results = usage_events_ingest(organization_id=world["organization"].pk, events=events)
    assert all(r.status == "accepted" for r in results), [r.as_dict() for r in results]
    tally_usage()


def revenue(world, event_id, amount_minor, **extra):
    from django.utils import timezone

    return {
        "event_id": event_id,
        "license": world["license"].uid,
        "metric": "downstream_revenue",
        "amount_minor": amount_minor,
        "currency": "USD",
        "occurred_at": timezone.now().isoformat(),
        **extra,
    }


def training_run(world, event_id, **extra):
    from django.utils import timezone

    return {
        "event_id": event_id,
        "license": world["license"].uid,
        "metric": "training_run",
        "quantity": 1,
        "occurred_at": timezone.now().isoformat(),
        **extra,
    }


def statement(world, period, who="performer"):
    return performer_statement(performer=world[who], period=period, currency="USD")


@pytest.fixture
def history(client, stripe_double, django_capture_on_commit_callbacks):
    """October: a $1,000 sale (25 % to a co-performer); $6,000 of downstream
    revenue (under the $10,000 threshold), then $8,000 more and two training
    runs at $25 each. November: October's royalty invoice is paid, then the
    sale is refunded."""
    with at(10, 5):
        world = licensed_world(
            stripe_double,
            co_performer_bps=2_500,
            price_minor=100_000,
            per_unit_rates={"training_run": {"amount_minor": 2_500, "per": 1}},
        )
    with at(10, 20):
        report(world, [revenue(world, "rev-1", 600_000)])
    with at(10, 25):
        report(
            world,
            [
                revenue(world, "rev-2", 800_000),
                training_run(world, "run-1"),
                training_run(world, "run-2"),
            ],
        )
    world["october_when_closed"] = statement(world, OCTOBER)
    with at(11, 3), django_capture_on_commit_callbacks(execute=True):
        (invoice,) = royalty_invoices_run(period=OCTOBER)
        invoice.refresh_from_db()
        assert invoice.amount_minor == 80_000 + 5_000
        _webhook(client, stripe_double, stripe_double.pay_invoice(invoice.stripe_invoice_id))
    with at(11, 12), django_capture_on_commit_callbacks(execute=True):
        order = world["license"].order_line.order
        intent = stripe_double.get(order.payment_intent_id, "payment_intent")
        charge = stripe_double.get(intent["latest_charge"], "charge")
        charge.update(amount_refunded=charge["amount"], refunded=True)
        _webhook(client, stripe_double, stripe_double.refund_event(charge["id"]))
    return world


def test_october_sale_and_royalties_crossing_the_threshold(history):
    s = statement(history, OCTOBER)
    assert (s.opening_pending_minor, s.opening_available_minor) == (0, 0)
    # The sale: $1,000, 20 % platform fee, 75 % of it to the lead performer.
    (sale,) = s.sales
    assert sale.license_uid == history["license"].uid
    assert sale.organization_name == "Deep Feelings AI"
    assert (sale.gross_minor, sale.fee_minor, sale.net_minor) == (75_000, 15_000, 60_000)
    # Royalties: 20 % of the $4,000 above the threshold, and 2 runs × $25, each
    # less the 20 % fee, 75 % to the lead; one line per license and metric.
    assert [(r.metric, r.gross_minor, r.fee_minor, r.net_minor) for r in s.royalties] == [
        ("downstream_revenue", 60_000, 12_000, 48_000),
        ("training_run", 3_750, 750, 3_000),
    ]
    assert s.royalties_total.net_minor == 51_000
    assert s.refunds == () and s.collected == () and s.payouts == ()
    assert s.payouts_minor == 0
    assert s.platform_fee_minor == 15_000 + 12_000 + 750
    assert (s.closing_pending_minor, s.closing_available_minor) == (51_000, 60_000)
    assert s.opening_minor + s.movements_minor == s.closing_minor == 111_000


def test_november_invoice_paid_and_refund(history):
    s = statement(history, NOVEMBER)
    assert (s.opening_pending_minor, s.opening_available_minor) == (51_000, 60_000)
    assert s.sales == () and s.royalties == ()
    (collected,) = s.collected
    assert (collected.pending_minor, collected.available_minor) == (-51_000, 51_000)
    assert s.collected_minor == 51_000
    (refund,) = s.refunds
    assert (refund.gross_minor, refund.fee_minor, refund.net_minor) == (-75_000, -15_000, -60_000)
    assert s.platform_fee_minor == -15_000
    assert s.payouts_minor == 0
    assert (s.closing_pending_minor, s.closing_available_minor) == (0, 51_000)
    assert s.opening_minor + s.movements_minor == s.closing_minor
    # Today's balances in the ledger equal November's closing: nothing since.
    performer = history["performer"]
    assert -ledger.balance(ledger.performer_account(performer, "pending", "USD")) == 0
    assert -ledger.balance(ledger.performer_account(performer, "available", "USD")) == 51_000


def test_the_co_performer_gets_their_own_statement(history):
    s = statement(history, OCTOBER, who="co_performer")
    assert [(x.gross_minor, x.fee_minor, x.net_minor) for x in s.sales] == [(25_000, 5_000, 20_000)]
    assert [(r.metric, r.net_minor) for r in s.royalties] == [
        ("downstream_revenue", 16_000),
        ("training_run", 1_000),
    ]
    assert (s.closing_pending_minor, s.closing_available_minor) == (17_000, 20_000)


def test_a_closed_month_never_changes(history):
    october, november = statement(history, OCTOBER), statement(history, NOVEMBER)
    assert october == history["october_when_closed"]  # the invoice and refund came later
    assert statement(history, OCTOBER) == october  # generated again: identical
    with at(12, 2):
        report(history, [revenue(history, "rev-3", 500_000), training_run(history, "run-3")])
    assert statement(history, OCTOBER) == october
    assert statement(history, NOVEMBER) == november
    december = statement(history, DECEMBER)
    assert december.opening_minor == november.closing_minor
    assert [(r.metric, r.net_minor) for r in december.royalties] == [
        # 20 % of $5,000 more revenue = $1,000, less 20 %, 75 % of it: $600
        ("downstream_revenue", 60_000),
        ("training_run", 1_500),
    ]
    assert statement_csv(statement(history, OCTOBER)) == statement_csv(october)
    assert statement_pdf(statement(history, OCTOBER)) == statement_pdf(october)


def test_a_quiet_month_carries_the_balance(history):
    s = statement(history, date(2027, 1, 1))
    assert not s.has_activity
    assert s.opening_minor == s.closing_minor == 51_000


def test_payouts_posted_to_the_ledger_appear_and_balance(history):
    """There is no payout model yet, but a payout entry in the ledger already
    lands in the payouts section and the balance check holds."""
    performer = history["performer"]
    with at(11, 20):
        ledger.post_entry(
            kind=JournalEntry.Kind.PAYOUT_CREATED,
            idempotency_key="test-payout-1",
            lines=[
                Line(ledger.performer_account(performer, "available", "USD"), 30_000),
                Line(ledger.performer_account(performer, "in_transit", "USD"), -30_000),
            ],
            memo="Payout to the connected account",
        )
    s = statement(history, NOVEMBER)
    assert s.payouts_minor == 30_000
    assert [p.description for p in s.payouts] == ["Payout to the connected account"]
    assert s.closing_available_minor == 21_000
    assert s.opening_minor + s.movements_minor == s.closing_minor


def test_a_ledger_posting_without_earnings_stops_the_statement(history):
    performer = history["performer"]
    with at(11, 25):
        ledger.post_entry(
            kind=JournalEntry.Kind.SALE,
            idempotency_key="test-sale-without-earnings",
            lines=[
                Line(ledger.platform_account(ledger.PLATFORM_CASH, "USD"), 1_000),
                Line(ledger.performer_account(performer, "available", "USD"), -1_000),
            ],
            memo="A sale posted by hand",
        )
    assert statement(history, OCTOBER).closing_minor == 111_000  # earlier months unaffected
    with pytest.raises(StatementOutOfBalance, match="has no earnings rows"):
        statement(history, NOVEMBER)


# --- CSV and PDF ----------------------------------------------------------------------------


def _csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_has_the_statement_numbers(history):
    s = statement(history, NOVEMBER)
    rows = _csv_rows(statement_csv(s))
    by_line: dict[str, list[dict]] = {}
    for row in rows:
        by_line.setdefault(row["line"], []).append(row)
    (head,) = by_line["statement"]
    assert (head["reference"], head["currency"]) == ("2026-11", "USD")
    (opening,) = by_line["opening"]
    (closing,) = by_line["closing"]
    assert int(opening["net_minor"]) == s.opening_minor == 111_000
    assert int(opening["pending_minor"]) == s.opening_pending_minor
    assert int(closing["net_minor"]) == s.closing_minor == 51_000
    assert int(closing["available_minor"]) == s.closing_available_minor
    (refund,) = by_line["refund"]
    assert refund["reference"] == history["license"].uid
    assert [int(refund[k]) for k in ("gross_minor", "fee_minor", "net_minor")] == [
        s.refunds[0].gross_minor,
        s.refunds[0].fee_minor,
        s.refunds[0].net_minor,
    ]
    (collected,) = by_line["collected"]
    assert int(collected["available_minor"]) == s.collected_minor
    assert int(by_line["platform_fee_total"][0]["fee_minor"]) == s.platform_fee_minor
    assert int(by_line["payouts_total"][0]["net_minor"]) == s.payouts_minor == 0
    movements = [r for r in rows if r["line"] in {"sale", "royalty", "refund", "collected"}]
    for bucket in ("pending_minor", "available_minor"):
        assert int(opening[bucket]) + sum(int(r[bucket]) for r in movements) == int(closing[bucket])


def test_the_csv_of_october_lists_royalties_by_metric(history):
    s = statement(history, OCTOBER)
    rows = [r for r in _csv_rows(statement_csv(s)) if r["line"] == "royalty"]
    assert [(r["metric"], int(r["net_minor"]), int(r["pending_minor"])) for r in rows] == [
        (line.metric, line.net_minor, line.net_minor) for line in s.royalties
    ]


def pdf_text(data: bytes) -> str:
    """The text drawn in a PDF made with fpdf2's core fonts: the content
    streams (inflated when compressed), string operands only."""
    chunks = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        with contextlib.suppress(zlib.error):  # uncompressed when made with compress=False
            stream = zlib.decompress(stream)
        chunks += [
            s.replace(rb"\(", b"(").replace(rb"\)", b")").decode("latin-1")
            for s in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", stream)
        ]
    return "\n".join(chunks)


def test_the_pdf_is_deterministic_and_shows_the_closing_balance(history):
    s = statement(history, OCTOBER)
    data = statement_pdf(s, compress=False)
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert "Closing balance" in text
    assert "$1,110.00" in text  # 51,000 pending + 60,000 available
    assert history["license"].uid in text
    assert "Training run" in text
    assert statement_pdf(s, compress=False) == data
    assert statement_pdf(s) == statement_pdf(s)


def test_the_statement_downloads(client, history):
    with at(12, 10):
        client.force_login(history["performer"].user)
        page = client.get(reverse("performer_statement", args=["2026-11"]))
        csv_response = client.get(reverse("performer_statement_csv", args=["2026-11"]))
        pdf_response = client.get(reverse("performer_statement_pdf", args=["2026-10"]))
    assert page.status_code == 200
    body = page.content.decode()
    assert page.context["statement"] == statement(history, NOVEMBER)
    for expected in ["November 2026", "$1,110.00", "$510.00", "Refund", "Balanced"]:
        assert expected in body, expected
    assert "This month is still open" not in body
    assert csv_response["Content-Type"].startswith("text/csv")
    assert "residuals-statement-2026-11-USD.csv" in csv_response["Content-Disposition"]
    rows = _csv_rows(csv_response.content.decode())
    assert int(rows[-1]["net_minor"]) == statement(history, NOVEMBER).closing_minor
    assert pdf_response["Content-Type"] == "application/pdf"
    assert pdf_response.content.startswith(b"%PDF")
    assert "$1,110.00" in pdf_text(pdf_response.content)


def test_the_current_month_is_marked_open_and_future_months_do_not_exist(client, history):
    with at(11, 22):
        client.force_login(history["performer"].user)
        page = client.get(reverse("performer_statement", args=["2026-11"]))
        future = client.get(reverse("performer_statement", args=["2026-12"]))
    assert "This month is still open" in page.content.decode()
    assert future.status_code == 404
    assert client.get("/earnings/statements/2026-13/").status_code == 404


def test_the_list_of_months(client, history):
    with at(12, 10):
        client.force_login(history["performer"].user)
        response = client.get(reverse("performer_statements"))
    months = [
        (row.slug, row.earned_net_minor, row.closing_minor) for row, _ in response.context["rows"]
    ]
    assert months == [("2026-11", -60_000, 51_000), ("2026-10", 111_000, 111_000)]
    body = response.content.decode()
    assert reverse("performer_statement_pdf", args=["2026-10"]) in body
    assert reverse("performer_statement_csv", args=["2026-11"]) in body


def test_an_unbalanced_statement_shows_an_apology_not_numbers(client, history):
    performer = history["performer"]
    with at(11, 25):
        ledger.post_entry(
            kind=JournalEntry.Kind.SALE,
            idempotency_key="test-sale-without-earnings",
            lines=[
                Line(ledger.platform_account(ledger.PLATFORM_CASH, "USD"), 1_000),
                Line(ledger.performer_account(performer, "available", "USD"), -1_000),
            ],
            memo="A sale posted by hand",
        )
    with at(12, 10):
        client.force_login(performer.user)
        response = client.get(reverse("performer_statement", args=["2026-11"]))
        download = client.get(reverse("performer_statement_pdf", args=["2026-11"]))
    assert response.status_code == download.status_code == 500
    assert "cannot be produced" in response.content.decode()


def test_statement_queries_do_not_grow_with_licenses(
    client, stripe_double, history, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse("performer_statement", args=["2026-10"])
    with at(12, 10):
        client.force_login(history["performer"].user)
        with CaptureQueriesContext(connection) as one:
            assert client.get(url).status_code == 200
    _more_licenses(stripe_double, history, 3)
    with at(12, 10):
        client.force_login(history["performer"].user)
        with django_assert_num_queries(len(one)):
            response = client.get(url)
    assert len(response.context["statement"].sales) == 4


def _more_licenses(stripe_double, world, count):
    """More licenses sold in October, each with royalties."""
    from tests.factories import make_organization, make_user
    from tests.factories_marketplace import make_published_listing, make_sellable_recording
    from tests.factories_royalties import buy

    for index in range(count):
        with at(10, 6 + index):
            recording = make_sellable_recording(
                world["performer"],
                title=f"Extra take {index}",
                uses=("model_training", "commercial_deployment"),
            )
            listing = make_published_listing(
                world["performer"],
                [recording],
                reviewer=world["staff"],
                title=f"Extra {index}",
                uses=("model_training", "commercial_deployment"),
                per_unit_rates={"training_run": {"amount_minor": 1_000, "per": 1}},
            )
            owner = make_user(email=f"owner{index}@extra.example")
            organization = make_organization(owner=owner, name=f"Extra AI {index}")
            (license,) = buy(
                stripe_double, organization=organization, buyer=owner, listings=[listing]
            )
            results = usage_events_ingest(
                organization_id=organization.pk,
                events=[
                    {**training_run(world, f"x-{index}"), "license": license.uid},
                ],
            )
            assert results[0].status == "accepted"
            tally_usage()
