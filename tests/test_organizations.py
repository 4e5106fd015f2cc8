"""Buyer organizations: creation, invitations and membership roles."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invitation, Membership, Organization
from core.models import AuditEvent
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_creating_an_organization_makes_the_creator_its_owner(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("organization_create"),
        {
            "name": "Deep Feeling Inc",
            "country": "CA",
            "billing_email": "Billing@DeepFeeling.example",
            "intended_use": "Evaluating emotion recognition models against acted speech.",
        },
    )
    organization = Organization.objects.get(name="Deep Feeling Inc")
    assert response.status_code == 302
    assert response.url == reverse("organization_detail", args=[organization.slug])
    assert organization.billing_email == "billing@deepfeeling.example"
    membership = Membership.objects.get(organization=organization)
    assert (membership.user, membership.role) == (owner, Membership.Role.OWNER)
    assert AuditEvent.objects.filter(action="organization.created", actor=owner).exists()


def test_an_organization_needs_a_real_intended_use_statement(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("organization_create"),
        {"name": "Vague", "country": "US", "billing_email": "b@v.example", "intended_use": "AI"},
    )
    assert response.status_code == 200
    assert "intended_use" in response.context["form"].errors
    assert not Organization.objects.filter(name="Vague").exists()


def _invite(client, organization, email, role="member"):
    return client.post(
        reverse("organization_members", args=[organization.slug]), {"email": email, "role": role}
    )


def _invitation_path(message) -> str:
    match = re.search(r"https?://[^/\s]+(/invitations/[^\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_an_owner_invites_and_the_invitee_joins(
    client, owner, organization, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(client, organization, "Newcomer@Buyer.example")
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["newcomer@buyer.example"]
    path = _invitation_path(mail.outbox[0])
    invitation = Invitation.objects.get()
    assert path.strip("/").split("/")[-1] not in invitation.token_hash  # only a hash is kept

    newcomer = make_user(email="newcomer@buyer.example")
    invitee = client.__class__()
    invitee.force_login(newcomer)
    assert invitee.get(path).status_code == 200
    response = invitee.post(path)
    assert response.status_code == 302
    membership = Membership.objects.get(organization=organization, user=newcomer)
    assert membership.role == Membership.Role.MEMBER
    invitation.refresh_from_db()
    assert invitation.accepted_by == newcomer

    # A used invitation cannot be used again.
    assert invitee.post(path).status_code == 400


def test_an_invitation_only_works_for_its_address(
    client, owner, organization, outsider, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client, organization, "someone.else@buyer.example")
    path = _invitation_path(mail.outbox[0])
    client.force_login(outsider)
    response = client.post(path)
    assert response.status_code == 403
    assert "someone.else@buyer.example" in response.content.decode()
    assert not Membership.objects.filter(user=outsider).exists()


def test_an_expired_invitation_is_refused(
    client, owner, organization, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client, organization, "late@buyer.example")
    path = _invitation_path(mail.outbox[0])
    late = make_user(email="late@buyer.example")
    client.force_login(late)
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        response = client.post(path)
    assert response.status_code == 400
    assert "expired" in response.content.decode()
    assert not Membership.objects.filter(user=late).exists()


def test_an_unknown_invitation_token_is_not_found(client, outsider):
    client.force_login(outsider)
    assert client.get("/invitations/not-a-real-token/").status_code == 404


def test_anonymous_invitee_is_offered_sign_in(
    client, owner, organization, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client, organization, "anon@buyer.example")
    path = _invitation_path(mail.outbox[0])
    anonymous = client.__class__()
    response = anonymous.get(path)
    assert response.status_code == 200
    assert reverse("account_signup") in response.content.decode()
    assert anonymous.post(path).status_code == 200  # nothing accepted without signing in
    assert Invitation.objects.get().accepted_at is None


def test_a_member_cannot_invite(client, member, organization):
    client.force_login(member)
    response = _invite(client, organization, "friend@buyer.example")
    assert response.status_code == 403
    assert not Invitation.objects.exists()


def test_a_member_cannot_change_roles(client, member, organization):
    client.force_login(member)
    own = Membership.objects.get(user=member)
    response = client.post(
        reverse("membership_role", args=[organization.slug, own.pk]), {"role": "owner"}
    )
    assert response.status_code == 403
    own.refresh_from_db()
    assert own.role == Membership.Role.MEMBER


def test_an_owner_promotes_a_member(client, owner, member, organization):
    client.force_login(owner)
    target = Membership.objects.get(user=member)
    client.post(reverse("membership_role", args=[organization.slug, target.pk]), {"role": "owner"})
    target.refresh_from_db()
    assert target.role == Membership.Role.OWNER
    assert AuditEvent.objects.filter(action="membership.role_changed").exists()


def test_the_last_owner_can_neither_step_down_nor_leave(client, owner, member, organization):
    client.force_login(owner)
    own = Membership.objects.get(user=owner)
    client.post(reverse("membership_role", args=[organization.slug, own.pk]), {"role": "member"})
    client.post(reverse("membership_remove", args=[organization.slug, own.pk]))
    own.refresh_from_db()
    assert own.role == Membership.Role.OWNER


def test_a_member_may_leave(client, member, organization):
    client.force_login(member)
    own = Membership.objects.get(user=member)
    response = client.post(reverse("membership_remove", args=[organization.slug, own.pk]))
    assert response.status_code == 302
    assert not Membership.objects.filter(user=member).exists()


def test_an_owner_removes_a_member(client, owner, member, organization):
    client.force_login(owner)
    target = Membership.objects.get(user=member)
    client.post(reverse("membership_remove", args=[organization.slug, target.pk]))
    assert not Membership.objects.filter(user=member).exists()


def test_a_member_cannot_remove_others(client, owner, member, organization):
    client.force_login(member)
    target = Membership.objects.get(user=owner)
    response = client.post(reverse("membership_remove", args=[organization.slug, target.pk]))
    assert response.status_code == 403
    assert Membership.objects.filter(user=owner).exists()


def test_an_owner_withdraws_an_invitation(
    client, owner, organization, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client, organization, "maybe@buyer.example")
    invitation = Invitation.objects.get()
    client.post(reverse("invitation_revoke", args=[organization.slug, invitation.pk]))
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    path = _invitation_path(mail.outbox[0])
    client.force_login(make_user(email="maybe@buyer.example"))
    assert client.post(path).status_code == 400
