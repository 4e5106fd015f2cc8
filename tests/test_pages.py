"""Pages people see: the landing page and each role's dashboard."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import make_performer

pytestmark = pytest.mark.django_db


def test_landing_explains_the_product_to_both_sides(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "performer" in html.lower()
    assert "buyer" in html.lower() or "ai team" in html.lower()
    assert reverse("account_signup") in html
    # Nothing from a CDN: every stylesheet and script is the project's own.
    assert "http://" not in html.split("<body", 1)[0].replace("http://www.w3.org", "")
    assert "https://" not in html.split("<body", 1)[0]


def test_static_css_is_served_by_the_project(client):
    response = client.get("/static/css/site.css")
    assert response.status_code == 200


def test_performer_lands_on_the_performer_dashboard(client):
    profile = make_performer(email="p@example.com", stage_name="Pat Stage")
    client.force_login(profile.user)
    response = client.get(reverse("dashboard"))
    assert response.url == reverse("performer_dashboard")
    page = client.get(response.url)
    assert "Pat Stage" in page.content.decode()


def test_buyer_lands_on_their_organization(client, member, organization):
    client.force_login(member)
    response = client.get(reverse("dashboard"), follow=True)
    assert response.redirect_chain[-1][0] == reverse(
        "organization_detail", args=[organization.slug]
    )
    assert organization.name in response.content.decode()


def test_someone_with_two_roles_chooses(client, owner, organization):
    make_performer(email="", user=owner, stage_name="Owner Who Acts")
    client.force_login(owner)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("performer_dashboard") in html and reverse("buyer_dashboard") in html


def test_becoming_a_performer(client, outsider):
    client.force_login(outsider)
    response = client.post(
        reverse("performer_profile"),
        {
            "stage_name": "Oz",
            "legal_name": "Oscar Outsider",
            "contact_email": "oz@example.com",
            "country": "IE",
            "jurisdiction": "",
            "contact_phone": "",
            "bio": "",
        },
    )
    assert response.status_code == 302
    outsider.refresh_from_db()
    assert outsider.performer_profile.stage_name == "Oz"


def test_performer_profile_requires_its_fields(client, outsider):
    client.force_login(outsider)
    response = client.post(reverse("performer_profile"), {"stage_name": ""})
    assert response.status_code == 200
    assert {"stage_name", "legal_name", "contact_email", "country"} <= set(
        response.context["form"].errors
    )


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"<html" in response.content
