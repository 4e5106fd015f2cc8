"""Issue 4's "Done when", in the browser: a buyer member buys two listings
through the simulated gateway (what `make run` uses), sees the licenses,
downloads files, gets the manifest and the certificate; after the end date
(the clock moved) downloads are refused and the license page asks for a
deletion attestation, which the member submits.

The test follows the pages themselves: every request is a link or a form
found in the page before it, not a URL the test already knows."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from licensing.models import DeletionAttestation, DownloadLog, License, Order
from tests.factories_licensing import licensing_world

pytestmark = pytest.mark.django_db


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # (text, name, value)
    _open_button: list | None = None


class Page(HTMLParser):
    """The links and forms of one HTML page."""

    def __init__(self, html: str, url: str):
        super().__init__()
        self.html, self.url = html, url
        self.links: list[tuple[str, str]] = []  # (text, href)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._link: list | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self._link = [attrs["href"], ""]
        elif tag == "form":
            self._form = Form(action=attrs.get("action") or urlsplit(self.url).path)
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and attrs.get("name"):
            self._form.fields[attrs["name"]] = attrs.get("value") or ""
        elif tag in ("textarea", "select") and self._form is not None and attrs.get("name"):
            self._form.fields[attrs["name"]] = ""
        elif tag == "button" and self._form is not None:
            self._form._open_button = ["", attrs.get("name", ""), attrs.get("value", "")]

    def handle_data(self, data):
        if self._link is not None:
            self._link[1] += data
        if self._form is not None and self._form._open_button is not None:
            self._form._open_button[0] += data

    def handle_endtag(self, tag):
        if tag == "a" and self._link is not None:
            self.links.append((" ".join(self._link[1].split()), self._link[0]))
            self._link = None
        elif tag == "button" and self._form is not None and self._form._open_button:
            text, name, value = self._form._open_button
            self._form.buttons.append((" ".join(text.split()), name, value))
            self._form._open_button = None
        elif tag == "form":
            self._form = None

    def link(self, text: str) -> str:
        hrefs = [href for label, href in self.links if label.startswith(text)]
        assert hrefs, f"no link “{text}” on {self.url}"
        return hrefs[0]

    def form(self, button: str, **match: str) -> tuple[Form, dict]:
        """The form with a button reading ``button`` (whose hidden fields match
        ``match``), and the data its button submits."""
        for form in self.forms:
            for text, name, value in form.buttons:
                if text.startswith(button) and all(
                    form.fields.get(k) == v for k, v in match.items()
                ):
                    data = {**form.fields, **({name: value} if name else {})}
                    return form, data
        raise AssertionError(f"no form with “{button}” {match or ''} on {self.url}")


class Browser:
    """The test client, as a person clicks through the site."""

    def __init__(self, client: Client):
        self.client = client
        self.page: Page | None = None

    def open(self, url: str, status: int = 200) -> Page:
        response = self.client.get(url, follow=True)
        assert response.status_code == status, (url, response.status_code)
        self.page = Page(response.content.decode(), response.request["PATH_INFO"])
        return self.page

    def click(self, text: str) -> Page:
        return self.open(self.page.link(text))

    def submit(self, button: str, data: dict | None = None, **match: str):
        form, fields = self.page.form(button, **match)
        response = self.client.post(form.action, {**fields, **(data or {})})
        return response

    def submit_and_follow(self, button: str, data: dict | None = None, **match: str) -> Page:
        response = self.submit(button, data, **match)
        assert response.status_code == 302, response.content.decode()[:500]
        return self.open(response["Location"])


@pytest.fixture
def simulated(settings):
    """`make run`: no Stripe key, DEBUG on."""
    settings.STRIPE_SECRET_KEY = ""
    settings.DEBUG = True


def _file_bytes(recording) -> bytes:
    with recording.file.storage.open(recording.file.name, "rb") as handle:
        return handle.read()


def test_a_buyer_buys_two_listings_uses_them_and_attests_deletion_at_the_end(
    client, simulated, mailoutbox, django_capture_on_commit_callbacks
):
    world = licensing_world(buy_first=False)
    member, organization = world["member"], world["organization"]
    listings = [world["listing"], world["second_listing"]]
    browser = Browser(client)
    client.force_login(member)

    # The catalogue: each listing's page has an "Add to cart" button.
    for listing in listings:
        browser.open(reverse("catalogue_detail", args=[listing.pk]))
        cart = browser.submit_and_follow("Add to cart", listing=str(listing.pk))
    assert "Grief, held back" in cart.html and "Quiet rage" in cart.html
    assert "simulated" in cart.html.lower()

    # Check out: the simulated payment page says plainly that no money moves.
    payment = browser.submit_and_follow("Check out")
    assert "Payment is simulated — no card is charged and no money moves" in payment.html
    assert "$623.45" in payment.html  # 500.00 + 123.45
    with django_capture_on_commit_callbacks(execute=True):
        order_page = browser.submit_and_follow("Complete simulated payment")
    assert "Payment confirmed — 2 licenses issued" in order_page.html
    order = Order.objects.get()
    assert order.status == "paid" and order.simulated
    assert mailoutbox[-1].subject == f"Receipt for order {order.number}"

    # The licenses page lists both, active.
    licenses_page = browser.click("All licenses")
    licenses = list(License.objects.filter(order_line__order=order).order_by("id"))
    assert [lic.status for lic in licenses] == ["active", "active"]
    for license in licenses:
        assert licenses_page.link(license.terms["listing_title"]).endswith(f"/{license.uid}/")

    # Each license: download its file with the button, get the manifest and certificate.
    links = {}
    for license in licenses:
        detail = browser.open(licenses_page.link(license.terms["listing_title"]))
        recording = license.recordings.get()
        response = browser.submit("Download", recording=recording.uid)
        assert response.status_code == 302
        links[license.uid] = response["Location"]
        download = client.get(response["Location"])
        assert download.status_code == 200
        assert b"".join(download.streaming_content) == _file_bytes(recording)

        browser.page = detail
        manifest = client.get(detail.link("Provenance manifest"))
        assert manifest["Content-Type"] == "application/ld+json"
        data = json.loads(manifest.content)
        assert data["licenseTerms"]["license_id"] == license.uid
        assert [f["sha256"] for f in data["distribution"]] == [recording.sha256]

        certificate = browser.click("License certificate")
        assert license.uid in certificate.html and organization.name in certificate.html
        document = client.get(detail.link("JSON")).json()
        assert document["certificate"]["license"]["id"] == license.uid
    assert DownloadLog.objects.filter(user=member, completed=True).count() == 2

    # Two years on: the lifecycle ends the licenses.
    end = max(lic.ends_at for lic in licenses)
    with time_machine.travel(end + timedelta(minutes=5)):
        out = io.StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("expire_licenses", stdout=out)
        assert "Licenses expired: 2" in out.getvalue()
        assert sum("Please confirm deletion" in m.subject for m in mailoutbox) == 2

        client.force_login(member)  # a two-year-old session has expired
        licenses_page = browser.open(reverse("buyer_licenses", args=[organization.slug]))
        assert "Please attest deletion" in licenses_page.html
        license = licenses[0]
        detail = browser.open(licenses_page.link(f"{license.uid} — "))
        assert re.search(r"has ended: please attest deletion by \d+ \w+ \d{4}", detail.html)
        assert "Download all as zip" not in detail.html
        with pytest.raises(AssertionError, match="no form with “Download”"):
            detail.form("Download")

        # A file link asked for earlier, and a fresh one, are refused.
        refused = client.get(links[license.uid])
        assert refused.status_code in (403, 410)
        response = client.post(
            reverse("buyer_license_download", args=[organization.slug, license.uid]),
            {"recording": license.recordings.get().uid},
            follow=True,
        )
        assert any("expired" in str(m) for m in response.context["messages"])

        # The attestation, from the form on the page.
        attested = browser.submit_and_follow(
            "Submit attestation",
            {
                "signer_name": "Milo Member",
                "signer_title": "Data lead",
                "statement": "Every copy was deleted from our buckets and training caches.",
                "systems": "s3://deep-feelings-raw, the training cluster scratch disks",
            },
        )
        assert "Deletion of the files licensed under" in attested.html
        assert "Attested by" in attested.html and "Milo Member, Data lead" in attested.html
    attestation = DeletionAttestation.objects.get(license=licenses[0])
    assert (attestation.status, attestation.submitted_by) == ("submitted", member)
    assert DeletionAttestation.objects.get(license=licenses[1]).status == "requested"
