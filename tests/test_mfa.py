"""Staff reach the admin and staff pages only after a second factor."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from django.core.cache import cache
from django.urls import reverse

from tests.factories import PASSWORD
from tests.totp import totp_code

# allauth announces a new authenticator on commit, and this project records
# the second factor in the session then: the tests need real commits.
pytestmark = pytest.mark.django_db(transaction=True)


def _login(client, email):
    return client.post(reverse("account_login"), {"login": email, "password": PASSWORD})


def _activate_totp(client) -> str:
    response = client.get(reverse("mfa_activate_totp"))
    assert response.status_code == 200
    secret = response.context["form"].secret
    response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302
    return secret


@pytest.mark.parametrize("path", ["/admin/", "/staff/"])
def test_staff_without_mfa_cannot_reach_staff_pages(client, staff_user, path):
    _login(client, staff_user.email)
    response = client.get(path)
    assert response.status_code == 302
    assert response.url.startswith(reverse("mfa_activate_totp"))


def test_staff_setting_up_totp_then_reaches_the_admin(client, staff_user):
    _login(client, staff_user.email)
    _activate_totp(client)
    assert Authenticator.objects.filter(user=staff_user, type="totp").exists()
    assert client.get("/admin/").status_code == 200
    assert client.get("/staff/").status_code == 200


def test_staff_login_asks_for_the_code_and_then_admits(client, staff_user):
    _login(client, staff_user.email)
    secret = _activate_totp(client)
    client.post(reverse("account_logout"))
    cache.clear()

    response = _login(client, staff_user.email)
    assert response.status_code == 302
    assert response.url == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302

    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_wrong_code_keeps_staff_out(client, staff_user):
    _login(client, staff_user.email)
    _activate_totp(client)
    client.post(reverse("account_logout"))
    _login(client, staff_user.email)
    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_a_session_without_a_second_factor_is_sent_to_reauthenticate(client, staff_user):
    """Holding a TOTP device is not enough: this session must have used it."""
    other = client.__class__()
    _login(other, staff_user.email)
    _activate_totp(other)
    client.force_login(staff_user)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.url.startswith(reverse("mfa_reauthenticate"))


def test_non_staff_cannot_reach_the_admin(client, outsider):
    _login(client, outsider.email)
    assert client.get("/admin/").status_code in {302, 403}
    assert client.get("/admin/login/").status_code == 403
    assert client.get("/staff/").status_code == 403


def test_anonymous_admin_login_goes_to_allauth(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
