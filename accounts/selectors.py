"""Reads for accounts. Anything that decides what a person may see lives here."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from accounts.models import ApiKey, Invitation, Membership, Organization, PerformerProfile, User


def organizations_for_user(user: User) -> QuerySet[Organization]:
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(memberships__user=user).order_by("name")


def membership_for(*, user: User, organization: Organization) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, organization=organization).first()


def organization_for_member(*, user: User, slug: str) -> tuple[Organization, Membership]:
    """The organization and the user's membership of it. Anyone else gets 404,
    so the existence of an organization never leaks to outsiders."""
    if not user.is_authenticated:
        raise Http404
    membership = (
        Membership.objects.select_related("organization").filter(user=user, organization__slug=slug)
    ).first()
    if membership is None:
        raise Http404("No such organization.")
    return membership.organization, membership


def organization_members(organization: Organization) -> QuerySet[Membership]:
    return organization.memberships.select_related("user").order_by("-role", "user__email")


def organization_pending_invitations(organization: Organization) -> list[Invitation]:
    invitations = organization.invitations.filter(
        accepted_at__isnull=True, revoked_at__isnull=True
    ).select_related("invited_by")
    return [i for i in invitations if i.is_pending]


def api_keys_for_organization(organization: Organization) -> QuerySet[ApiKey]:
    return organization.api_keys.select_related("created_by", "revoked_by").order_by(
        "revoked_at", "-created_at"
    )


def api_keys_for_performer(performer: PerformerProfile) -> QuerySet[ApiKey]:
    return performer.api_keys.select_related("created_by", "revoked_by").order_by(
        "revoked_at", "-created_at"
    )


@dataclass(frozen=True)
class Principal:
    """Who is acting on the API, and for whom.

    A signed-in person acts for every organization they belong to and for
    their own performer profile. An API key acts for exactly its one owner:
    an organization's key never acts as a performer, nor the reverse.
    """

    user: User
    api_key: ApiKey | None = None
    organization_ids: frozenset[int] = field(default_factory=frozenset)
    performer: PerformerProfile | None = None

    @property
    def is_staff(self) -> bool:
        # Staff powers are for people at a browser, never for machine keys.
        return self.api_key is None and self.user.is_staff

    def can_act_for(self, organization_id: int) -> bool:
        return organization_id in self.organization_ids


def api_key_of(request: HttpRequest | None) -> ApiKey | None:
    """The API key a request was authenticated with (DRF's ``request.auth``),
    for audit records; None for a browser session or no request."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiKey) else None


def principal_for(user: User, api_key: ApiKey | None) -> Principal:
    if api_key is not None:
        return Principal(
            user=user,
            api_key=api_key,
            organization_ids=frozenset(
                [api_key.organization_id] if api_key.organization_id else []
            ),
            performer=api_key.performer,
        )
    org_ids = frozenset(
        Membership.objects.filter(user=user).values_list("organization_id", flat=True)
    )
    performer = PerformerProfile.objects.filter(user=user).first()
    return Principal(user=user, organization_ids=org_ids, performer=performer)


def dashboards_for(user: User) -> list[tuple[str, str]]:
    """(label, url name) for each role the user holds, in the order shown."""
    from django.urls import reverse

    found: list[tuple[str, str]] = []
    if user.is_staff:
        found.append(("Staff", reverse("staff_dashboard")))
    if hasattr(user, "performer_profile"):
        found.append(("Performer", reverse("performer_dashboard")))
    if Membership.objects.filter(user=user).exists():
        found.append(("Buyer", reverse("buyer_dashboard")))
    return found
