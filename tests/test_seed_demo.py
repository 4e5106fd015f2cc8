from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command

from accounts.management.commands.seed_demo import DEMO_PASSWORD
from accounts.models import Membership, Organization, PerformerProfile, User
from core.models import AuditEvent

pytestmark = pytest.mark.django_db


def _counts():
    return (
        User.objects.count(),
        PerformerProfile.objects.count(),
        Organization.objects.count(),
        Membership.objects.count(),
        EmailAddress.objects.count(),
    )


def test_seed_demo_is_idempotent(client, capsys):
    call_command("seed_demo")
    first = _counts()
    assert first == (6, 3, 1, 2, 6)
    audit_rows = AuditEvent.objects.count()

    call_command("seed_demo")
    assert _counts() == first
    assert AuditEvent.objects.count() == audit_rows
    out = capsys.readouterr().out
    assert "maya@demo.residuals.local" in out and DEMO_PASSWORD in out


@pytest.mark.parametrize(
    ("email", "lands_on"),
    [
        ("maya@demo.residuals.local", "/performer/"),
        ("ana@demo-lumen.example", "/orgs/lumen-labs/"),
        ("sam@demo-lumen.example", "/orgs/lumen-labs/"),
    ],
)
def test_each_demo_login_lands_on_its_dashboard(client, email, lands_on):
    call_command("seed_demo")
    response = client.post(
        "/accounts/login/", {"login": email, "password": DEMO_PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == lands_on
    assert response.status_code == 200


def test_the_demo_staff_login_is_asked_to_set_up_mfa(client):
    call_command("seed_demo")
    response = client.post(
        "/accounts/login/",
        {"login": "staff@demo.residuals.local", "password": DEMO_PASSWORD},
        follow=True,
    )
    assert response.redirect_chain[-1][0].startswith("/accounts/2fa/totp/activate/")
