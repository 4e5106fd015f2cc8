"""Sign-up, email verification, login, logout and password reset through the
real allauth views."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from accounts.models import User
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a different long passphrase 42"


def _link_in(message, pattern: str) -> str:
    match = re.search(rf"https?://[^/\s]+({pattern})", message.body)
    assert match, f"no link matching {pattern!r} in:\n{message.body}"
    return match.group(1)


def test_signup_requires_email_verification_before_login(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "New.Person@Example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    user = User.objects.get()
    assert user.email == "new.person@example.com"  # stored lower-case
    assert not EmailAddress.objects.get(user=user).verified

    # Not signed in until the address is verified.
    assert client.get(reverse("dashboard")).status_code == 302
    response = client.post(
        reverse("account_login"), {"login": "new.person@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    assert "_auth_user_id" not in client.session

    # Sign-up sent the verification mail; allauth does not resend it within
    # its cool-down, so the login attempt added none.
    assert len(mail.outbox) == 1
    confirm_path = _link_in(mail.outbox[-1], r"/accounts/confirm-email/[^\s]+/")
    assert client.get(confirm_path).status_code == 200
    response = client.post(confirm_path)
    assert response.status_code == 302
    assert EmailAddress.objects.get(user=user).verified
    assert client.session["_auth_user_id"] == str(user.pk)

    # A person with no role yet is helped to choose one.
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert reverse("performer_profile") in response.content.decode()
    assert reverse("organization_create") in response.content.decode()


def test_signup_with_a_taken_email_is_refused(client):
    make_user(email="taken@example.com")
    response = client.post(
        reverse("account_signup"),
        {"email": "TAKEN@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    # allauth does not reveal that the address exists: it answers as for a new
    # sign-up and mails the owner of the address instead.
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1
    assert response.status_code in {200, 302}


def test_login_and_logout(client):
    user = make_user(email="person@example.com")
    response = client.post(
        reverse("account_login"), {"login": "PERSON@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)

    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("dashboard")).status_code == 302


def test_login_with_a_wrong_password_fails(client):
    make_user(email="person@example.com")
    response = client.post(
        reverse("account_login"), {"login": "person@example.com", "password": "wrong"}
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_password_reset(client):
    make_user(email="forgetful@example.com")
    response = client.post(reverse("account_reset_password"), {"email": "forgetful@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    reset_path = _link_in(mail.outbox[0], r"/accounts/password/reset/key/[^\s]+/")

    response = client.get(reset_path)
    # allauth moves the key out of the URL into the session, then shows the form.
    assert response.status_code == 302
    form_path = response.url
    response = client.post(form_path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302

    assert not client.login(email="forgetful@example.com", password=PASSWORD)
    response = client.post(
        reverse("account_login"), {"login": "forgetful@example.com", "password": NEW_PASSWORD}
    )
    assert response.status_code == 302
    assert "_auth_user_id" in client.session


def test_password_reset_link_works_once(client):
    make_user(email="forgetful@example.com")
    client.post(reverse("account_reset_password"), {"email": "forgetful@example.com"})
    reset_path = _link_in(mail.outbox[0], r"/accounts/password/reset/key/[^\s]+/")
    form_path = client.get(reset_path).url
    client.post(form_path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    other = client.__class__()
    response = other.get(reset_path, follow=True)
    assert "password1" not in response.content.decode()
